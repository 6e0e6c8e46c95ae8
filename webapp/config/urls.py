from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path, re_path

from webapp.core.views import api_not_found

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("webapp.core.urls")),
    path("", include("webapp.studio.urls")),
    # Last: API clients get a JSON 404 for any path no view matched, in DEBUG too.
    re_path(r"^api/", api_not_found),
]
# Local media only; in production media come from S3.
urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
