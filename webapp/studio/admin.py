from django.contrib import admin

from .models import MixVersion, Project, Stem


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "owner", "created_at"]
    readonly_fields = ["created_at", "updated_at"]


@admin.register(Stem)
class StemAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "position", "name", "filename"]


@admin.register(MixVersion)
class MixVersionAdmin(admin.ModelAdmin):
    list_display = ["project", "number", "method", "loudness_lufs", "af_loss", "created_at"]
    exclude = ["analysis", "chart_data"]
