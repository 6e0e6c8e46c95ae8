from django.contrib import admin

from .models import AudioFile


@admin.register(AudioFile)
class AudioFileAdmin(admin.ModelAdmin):
    list_display = ["id", "original_name", "size_bytes", "created_at"]
    readonly_fields = ["created_at", "updated_at"]
