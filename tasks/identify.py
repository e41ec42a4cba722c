"""Identify an input by its content, so renamed copies and reruns map to the same video."""

from __future__ import annotations

from dataclasses import dataclass

from handlabel.storage.fs import basename
from handlabel.storage.hashing import content_hash, video_id_from_hash, video_id_from_url
from prefect import task


@dataclass(frozen=True)
class VideoIdentity:
    url: str
    video_id: str
    content_hash: str | None = None
    size_bytes: int | None = None
    error: str | None = None  # set when the file could not even be read

    @property
    def name(self) -> str:
        return basename(self.url)


@task(name="identify-video", task_run_name="identify {url}", retries=2, retry_delay_seconds=2)
def identify_video(url: str) -> VideoIdentity:
    """Hash the file's bytes; an unreadable input gets an identity that carries its error."""
    try:
        digest, size = content_hash(url)
    except FileNotFoundError:
        return VideoIdentity(url, video_id_from_url(url), error=f"{url}: file not found")
    except IsADirectoryError:
        return VideoIdentity(url, video_id_from_url(url), error=f"{url}: is a folder")
    except PermissionError:
        return VideoIdentity(url, video_id_from_url(url), error=f"{url}: permission denied")
    return VideoIdentity(url, video_id_from_hash(digest), digest, size)
