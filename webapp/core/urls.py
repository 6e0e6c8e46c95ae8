from django.urls import path

from . import views

urlpatterns = [
    path("api/jobs/<uuid:job_id>/", views.job_detail, name="job-detail"),
    path("api/session/", views.session, name="session"),
    path("healthz", views.healthz, name="healthz"),
]
