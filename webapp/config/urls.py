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
# No media route, in DEBUG either: every stored file is served by a view that checks its owner.
