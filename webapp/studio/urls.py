from django.urls import path

from . import views

project = "api/projects/<uuid:project_id>/"
version = project + "versions/<int:number>/"

urlpatterns = [
    path("", views.project_list_page, name="project-list-page"),
    path("projects/<uuid:project_id>/", views.studio_page, name="studio-page"),
    path("api/schema/", views.schema, name="schema"),
    path("api/jobs/<uuid:job_id>/", views.job_detail, name="job-detail"),
    path("api/jobs/<uuid:job_id>/cancel/", views.job_cancel, name="job-cancel"),
    path("api/projects/", views.projects, name="projects"),
    path(project, views.project_detail, name="project-detail"),
    path(project + "stems/", views.stems, name="stems"),
    path(project + "stems/<uuid:stem_id>/", views.stem_detail, name="stem-detail"),
    path(project + "stems/<uuid:stem_id>/fix/", views.stem_fix, name="stem-fix"),
    path(project + "preflight/", views.stems_preflight, name="preflight"),
    path(project + "reference/", views.reference, name="reference"),
    path(project + "reference/audio/", views.reference_audio, name="reference-audio"),
    path(project + "baseline/audio/", views.baseline_audio, name="baseline-audio"),
    path(project + "mix/", views.mix, name="mix"),
    path(project + "render/", views.render_version, name="render"),
    path(project + "preset/", views.preset, name="preset"),
    path(project + "strength/", views.strength, name="strength"),
    path(version, views.version_detail, name="version-detail"),
    path(version + "advice/", views.version_advice, name="version-advice"),
    path(version + "charts/", views.version_charts, name="version-charts"),
    path(version + "explain/", views.version_explanation, name="version-explain"),
    path(version + "audio/", views.version_audio, name="version-audio"),
    path(version + "download/", views.version_download, name="version-download"),
    path(version + "preset/", views.version_preset, name="version-preset"),
    path(version + "stems/", views.version_stems, name="version-stems"),
    path(version + "preview/", views.version_preview, name="version-preview"),
    path(version + "preview/<str:entry>", views.version_preview_file, name="version-preview-file"),
]
