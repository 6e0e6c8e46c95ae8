from django.urls import path

from . import views

urlpatterns = [
    path("api/audio-files/", views.audio_file_create, name="audio-file-create"),
]
