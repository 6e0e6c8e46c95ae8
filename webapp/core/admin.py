from django.contrib import admin

from .models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "status", "progress", "stage", "attempts", "created_at"]
    list_filter = ["status", "kind"]
    readonly_fields = ["created_at", "updated_at"]
