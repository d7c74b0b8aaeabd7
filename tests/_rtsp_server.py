"""A GStreamer RTSP test server (run by Debian's /usr/bin/python3, which has the gi bindings).

Usage: python3 _rtsp_server.py PORT [USER PASSWORD]
Serves a 320x240, 30 fps live test pattern at rtsp://127.0.0.1:PORT/test (with basic auth when
USER and PASSWORD are given). Recipe: shared/notes/STREAMS.md.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(sys.argv[1])
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,"
    "framerate=30/1,format=I420 ! jpegenc ! rtpjpegpay name=pay0 pt=26 )"
)
factory.set_shared(True)
if len(sys.argv) >= 4:
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(sys.argv[2], sys.argv[3]), token)
    server.set_auth(auth)
    perms = GstRtspServer.RTSPPermissions()
    perms.add_role_from_structure(
        Gst.Structure.new_from_string(
            "user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
        )
    )
    factory.set_permissions(perms)
server.get_mount_points().add_factory("/test", factory)
if server.attach(None) == 0:  # the port is still taken (a server just stopped): caller retries
    print("bind failed", flush=True)
    sys.exit(3)
print("ready", flush=True)
GLib.MainLoop().run()
