"""Schemathesis hooks for the attendance terminal's API (loaded by tests/schemathesis.rs
with SCHEMATHESIS_HOOKS=hooks).

An `image` must be a photo that decodes: no schema can say that, so every generated
`image` is replaced with one of the demo photos (a face: enrolments and identifications
then go the whole way, rather than stopping at `bad_image`). Everything else is as
generated.
"""
import base64
import pathlib

import schemathesis

_DEMO = pathlib.Path(__file__).resolve().parents[2] / "assets" / "demo" / "2_grace_hopper.jpg"
PHOTO = _DEMO.read_bytes()


@schemathesis.hook
def before_call(ctx, case, kwargs):
    # Every phase's cases pass here (the coverage phase's do not go through map_body).
    body = case.body
    if not isinstance(body, dict) or "image" not in body:
        return
    if "multipart" in (case.media_type or ""):
        body["image"] = PHOTO
    else:
        body["image"] = base64.b64encode(PHOTO).decode()
