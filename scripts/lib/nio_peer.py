"""A Synapse user driven with matrix-nio, for the federation interop tests.

One command per run, its answer as JSON on stdout; a failed call exits 1 with nio's error.
The user logs in with APOGEE_TEST_SYNAPSE_URL / _USER / _PASSWORD (scripts/with-synapse.sh).

  create VERSION NAME          a public room of that version -> {"room_id"}
  join ROOM                    -> {"room_id"}
  send ROOM TYPE CONTENT_JSON  -> {"event_id"}
  redact ROOM EVENT            -> {"event_id"}
  upload FILE CONTENT_TYPE     -> {"content_uri"}
  download MXC                 -> {"base64"}
  messages ROOM                the newest 100 events, oldest first -> [event, ...]
  leave ROOM                   -> {}
"""

import asyncio
import base64
import io
import json
import os
import sys

from nio import AsyncClient, ErrorResponse, RoomVisibility


def checked(response):
    if isinstance(response, ErrorResponse):
        sys.exit(f"nio: {type(response).__name__}: {response}")
    return response


async def run(client, command, args):
    if command == "create":
        version, name = args
        r = checked(
            await client.room_create(
                visibility=RoomVisibility.public, name=name, room_version=version
            )
        )
        return {"room_id": r.room_id}
    if command == "join":
        return {"room_id": checked(await client.join(args[0])).room_id}
    if command == "send":
        room, kind, content = args
        r = checked(await client.room_send(room, kind, json.loads(content)))
        return {"event_id": r.event_id}
    if command == "redact":
        return {"event_id": checked(await client.room_redact(*args)).event_id}
    if command == "upload":
        path, content_type = args
        with open(path, "rb") as f:
            data = f.read()
        r, _ = await client.upload(
            io.BytesIO(data),
            content_type=content_type,
            filename=os.path.basename(path),
            filesize=len(data),
        )
        return {"content_uri": checked(r).content_uri}
    if command == "download":
        r = checked(await client.download(mxc=args[0]))
        return {"base64": base64.b64encode(r.body).decode()}
    if command == "messages":
        r = checked(await client.room_messages(args[0], limit=100))
        return [event.source for event in reversed(r.chunk)]
    if command == "leave":
        checked(await client.room_leave(args[0]))
        return {}
    sys.exit(f"unknown command {command}")


async def main():
    client = AsyncClient(os.environ["APOGEE_TEST_SYNAPSE_URL"], os.environ["APOGEE_TEST_SYNAPSE_USER"])
    try:
        checked(await client.login(os.environ["APOGEE_TEST_SYNAPSE_PASSWORD"]))
        print(json.dumps(await run(client, sys.argv[1], sys.argv[2:])))
    finally:
        await client.close()


asyncio.run(main())
