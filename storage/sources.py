"""Turn what a user names (folders, globs, files, fsspec URLs) into a list of video URLs."""

from __future__ import annotations

from collections.abc import Iterable

from .fs import filesystem, is_local, normalise_url

GLOB_CHARS = set("*?[")


class SourceNotFoundError(FileNotFoundError):
    """A named source that is no file, folder, glob match or reachable URL."""


def _to_url(fs, path: str, local: bool) -> str:
    return path if local else fs.unstrip_protocol(path)


def _has_extension(path: str, extensions: set[str]) -> bool:
    return any(path.lower().endswith(ext) for ext in extensions)


def resolve_sources(sources: Iterable[str], extensions: Iterable[str]) -> list[str]:
    """Video URLs named by ``sources``, sorted and without repeats.

    A folder is scanned recursively for the given extensions; a glob or an explicit file is
    taken as named (so a mis-named file fails in ingest with its own message rather than
    vanishing). A source that matches nothing raises :class:`SourceNotFoundError`.
    """
    exts = {e.lower() if e.startswith(".") else "." + e.lower() for e in extensions}
    found: list[str] = []
    for source in sources:
        url = normalise_url(source)
        local = is_local(url)
        fs, path = filesystem(url)
        if GLOB_CHARS & set(path):
            matches = [p for p in fs.glob(path) if fs.isfile(p)]
            if not matches:
                raise SourceNotFoundError(f"{source}: the pattern matches no file")
            found += [_to_url(fs, p, local) for p in matches]
        elif fs.isdir(path):
            found += [_to_url(fs, p, local) for p in fs.find(path) if _has_extension(p, exts)]
        elif fs.exists(path):
            found.append(_to_url(fs, path, local))
        else:
            raise SourceNotFoundError(f"{source}: no such file, folder or URL")
    return sorted(dict.fromkeys(found))


def declared_frames(sources: Iterable[str], extensions: Iterable[str]) -> int | None:
    """The frames the videos of ``sources`` declare in their headers, all together; None
    where a source is missing or a video does not say (the caller then cannot call the job
    small)."""
    from .video import VideoDecodeError, probe_video

    try:
        counts = [probe_video(url).declared_frames
                  for url in resolve_sources(sources, extensions)]
    except (SourceNotFoundError, VideoDecodeError, OSError):
        return None
    return sum(counts) if counts and all(counts) else None
