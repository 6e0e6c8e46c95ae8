from django.urls import path

from . import views

urlpatterns = [
    path("api/session/", views.session, name="session"),
    path("healthz", views.healthz, name="healthz"),
]
