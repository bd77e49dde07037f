"""Slack's file upload flow, played by the sandbox (slack_sdk's `files_upload_v2` walks it):

1. `files.getUploadURLExternal` (`filename`, `length`; scope `files:write`) answers `{"ok", "upload_url", "file_id"}`;
   the URL is on this server (`/upload/v1/{ticket}`, as Slack's are on files.slack.com), needs no token, and takes
   one POST of the file: raw bytes or a multipart form, answered `200 "OK - {bytes}"`.
2. `files.completeUploadExternal` (`files`: a JSON array of `{"id", "title"?}`; `channel_id` or `channels`,
   `thread_ts`, `initial_comment`; scope `files:write`) finishes the upload, once: a file whose bytes never
   arrived, already finished, or never asked for answers `file_not_found`. With a channel the file is shared there,
   in `thread_ts`'s thread when given, as a message carrying `files` (`upload: true`); without one it stays private.
   Answers `{"ok": true, "files": [{"id", "title", …}]}`.

Mixed into SandboxSlack, which owns the workspace; `files` holds every upload by id.
"""

from __future__ import annotations

import copy
import itertools
import json
import mimetypes
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

from bot.sandbox.slack_checks import SlackError

UPLOAD_PATH = "/upload/v1/{ticket}"
MAX_FILE_BYTES = 1024**3  # "Files can be up to 1 GB"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(slots=True)
class SandboxFile:
    """One upload: what files.getUploadURLExternal was told, the bytes the upload URL received, and where it went."""

    id: str
    filename: str
    length: int
    alt_txt: str | None
    ticket: str
    content: bytes | None = None  # None until the upload URL has it
    title: str | None = None
    completed: bool = False
    shares: list[dict[str, str]] = field(default_factory=list)  # {"channel", "ts"} of each message showing it

    @property
    def mimetype(self) -> str:
        if self.content is not None and self.content.startswith(PNG_SIGNATURE):
            return "image/png"
        return mimetypes.guess_type(self.filename)[0] or "application/octet-stream"

    def described(self) -> dict[str, Any]:
        """The file object as Slack's answers and messages show it (the fields orderbot and the tests read)."""
        shown: dict[str, Any] = {
            "id": self.id,
            "name": self.filename,
            "title": self.title or self.filename,
            "mimetype": self.mimetype,
            "filetype": self.filename.rsplit(".", 1)[-1].lower() if "." in self.filename else "",
            "size": len(self.content or b""),
            "alt_txt": self.alt_txt,
            "channels": sorted({share["channel"] for share in self.shares}),
        }
        size = png_size(self.content or b"")
        if size:
            shown["original_w"], shown["original_h"] = size
        return shown


def png_size(content: bytes) -> tuple[int, int] | None:
    """A PNG's width and height from its IHDR chunk; None when `content` is not a PNG."""
    if not content.startswith(PNG_SIGNATURE) or content[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", content[16:24])


class FileUploads:
    """The file half of SandboxSlack, which sets up the attributes below, adds `_file_methods` and
    `_add_file_routes`, and provides the workspace (`_base`, `_postable_channel`, `_thread_root`, `_store_message`)."""

    files: dict[str, SandboxFile]
    _file_ids: itertools.count
    _tickets_to_files: dict[str, str]

    def _file_methods(self) -> dict[str, Any]:
        return {
            "files.getUploadURLExternal": self._get_upload_url,
            "files.completeUploadExternal": self._complete_upload,
        }

    def _add_file_routes(self, app: web.Application) -> None:
        app.router.add_post(UPLOAD_PATH, self._receive_upload)

    def _get_upload_url(self, args: dict) -> dict:
        filename, length = args.get("filename"), _integer(args.get("length"))
        problems = []
        if not filename:
            problems.append("[ERROR] missing required field: filename")
        if length is None:
            problems.append("[ERROR] missing required field: length")
        if problems:
            raise SlackError("invalid_arguments", problems)
        if length <= 0 or length > MAX_FILE_BYTES:
            raise SlackError("invalid_arguments", [f"[ERROR] length must be from 1 to {MAX_FILE_BYTES}"])
        upload = SandboxFile(
            id=f"F0SANDBOX{next(self._file_ids):04d}",
            filename=str(filename),
            length=length,
            alt_txt=args.get("alt_txt") or args.get("alt_text"),
            ticket=secrets.token_urlsafe(12),
        )
        self.files[upload.id] = upload
        self._tickets_to_files[upload.ticket] = upload.id
        return {"ok": True, "upload_url": f"{self._base()}/upload/v1/{upload.ticket}", "file_id": upload.id}

    async def _receive_upload(self, request: web.Request) -> web.Response:
        upload = self.files.get(self._tickets_to_files.get(request.match_info["ticket"], ""))
        if upload is None or upload.completed:
            return web.Response(status=404, text="Not Found")
        if request.content_type == "multipart/form-data":
            content = b""
            async for part in await request.multipart():
                if isinstance(part, BodyPartReader) and part.filename is not None:
                    content = await part.read()
                    break
        else:
            content = await request.read()
        upload.content = content
        return web.Response(text=f"OK - {len(content)}")

    def _complete_upload(self, args: dict) -> dict:
        wanted = args.get("files")
        if isinstance(wanted, str):
            try:
                wanted = json.loads(wanted)
            except ValueError:
                raise SlackError("invalid_arguments", ["[ERROR] files must be a JSON array"]) from None
        if not isinstance(wanted, list) or not wanted or not all(isinstance(f, dict) and f.get("id") for f in wanted):
            raise SlackError("invalid_arguments", ["[ERROR] missing required field: files"])
        uploads = [self.files.get(str(f["id"])) for f in wanted]
        if any(u is None or u.completed or u.content is None for u in uploads):
            raise SlackError("file_not_found")
        channels = [args["channel_id"]] if args.get("channel_id") else _listed(args.get("channels"))
        shared_in = [self._postable_channel(channel) for channel in channels]
        thread_ts = args.get("thread_ts")
        if thread_ts and len(shared_in) != 1:
            raise SlackError("invalid_arguments", ["[ERROR] thread_ts needs exactly one channel"])
        roots = {channel: self._thread_root(channel, thread_ts) for channel in shared_in}
        if thread_ts and None in roots.values():
            raise SlackError("thread_not_found")  # as chat.postMessage answers a thread_ts it does not know
        for upload, asked in zip(uploads, wanted, strict=True):
            upload.title = asked.get("title") or upload.filename
            upload.completed = True
        for channel in shared_in:
            message = self._store_message(channel, args.get("initial_comment") or "", [], roots[channel])
            message["upload"] = True
            for upload in uploads:
                upload.shares.append({"channel": channel, "ts": message["ts"]})
            message["files"] = [upload.described() for upload in uploads]
        return {"ok": True, "files": [copy.deepcopy(upload.described()) for upload in uploads]}


def _integer(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _listed(channels: Any) -> list[str]:
    return [c.strip() for c in str(channels).split(",") if c.strip()] if channels else []
