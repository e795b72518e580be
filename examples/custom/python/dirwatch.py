#!/usr/bin/python3
"""A custom eventgate gateway in Python: watches folders and emits an event for every file
created, changed or deleted in them.

It is a plain gRPC server implementing gateways.Eventing (protos/gateways/eventing.proto) on
the stubs that `tools/protogen.sh stubs python` generates into protos/gen/python. Any
gateway-client (eventgate's, or Argo Events v0.10's) drives it: it validates each event source
of the ConfigMap with ValidateEventSource, then keeps one StartEventSource stream open per
source, and turns every Event on it into a CloudEvent for the sensors.

To make it yours: replace Config (the fields of one event source and their checks) and
watch() (what produces the events); the server, the signals and the stream handling stay.
"""

import concurrent.futures
import fnmatch
import hashlib
import json
import logging
import os
import signal
import sys
import threading
from datetime import datetime, timezone

import grpc
import yaml

try:
    from gateways import eventing_pb2, eventing_pb2_grpc
except ImportError:
    # Not on PYTHONPATH: use the stubs generated in this checkout.
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "protos", "gen", "python"))
    try:
        from gateways import eventing_pb2, eventing_pb2_grpc
    except ImportError as err:
        sys.exit(f"dirwatch: no Python stubs ({err}): run tools/protogen.sh stubs python, or put them on PYTHONPATH")

log = logging.getLogger("dirwatch")

EVENT_KINDS = ("created", "changed", "deleted")


class Invalid(Exception):
    """A configuration the gateway refuses; its message lists every problem by field path."""


def parse_duration(value):
    """Seconds from a Go-style duration ("500ms", "2s", "1m", "1m30s") or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, (int, float)):
        return float(value)
    text, total = str(value).strip(), 0.0
    units = (("ms", 0.001), ("h", 3600.0), ("m", 60.0), ("s", 1.0))
    if not text:
        raise ValueError
    while text:
        number = ""
        while text and (text[0].isdigit() or text[0] == "."):
            number, text = number + text[0], text[1:]
        unit = next((u for u in units if text.startswith(u[0])), None)
        if not number or unit is None:
            raise ValueError
        total, text = total + float(number) * unit[1], text[len(unit[0]):]
    return total


class Config:
    """One event source: which folder to watch, and how.

        dir:
          path: /data/inbox        # required, absolute
          pattern: "*.csv"         # file names to report (glob), default "*"
          recursive: false         # also watch sub-folders
        interval: 1s               # how often to look, at least 100ms, default 1s
        events: [created, changed, deleted]   # default: all three
        includeExisting: false     # report the files present at start as created
    """

    def __init__(self, data):
        problems = []
        try:
            raw = yaml.safe_load(data) if data.strip() else None
        except yaml.YAMLError as err:
            raise Invalid(f"config: not YAML: {str(err).splitlines()[0]}")
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise Invalid(f"config: must be a mapping, got {type(raw).__name__}")
        known = {"dir", "interval", "events", "includeExisting"}
        problems += [f"{k}: unknown field" for k in sorted(map(str, set(raw) - known))]

        d = raw.get("dir")
        if d is None:
            d = {}
            problems.append("dir.path: required")
        elif not isinstance(d, dict):
            d = {}
            problems.append("dir: must be a mapping with path, pattern, recursive")
        else:
            problems += [f"dir.{k}: unknown field" for k in sorted(map(str, set(d) - {"path", "pattern", "recursive"}))]
            if not d.get("path"):
                problems.append("dir.path: required")
            elif not isinstance(d["path"], str) or not os.path.isabs(d["path"]):
                problems.append(f"dir.path: must be an absolute path, got {d['path']!r}")
        self.path = d.get("path") if isinstance(d.get("path"), str) else ""
        self.pattern = d.get("pattern", "*")
        if not isinstance(self.pattern, str) or not self.pattern:
            problems.append(f"dir.pattern: must be a non-empty glob, got {self.pattern!r}")
        self.recursive = d.get("recursive", False)
        if not isinstance(self.recursive, bool):
            problems.append(f"dir.recursive: must be true or false, got {self.recursive!r}")

        try:
            self.interval = parse_duration(raw.get("interval", "1s"))
            if self.interval < 0.1:
                problems.append(f"interval: must be at least 100ms, got {raw.get('interval')}")
        except ValueError:
            problems.append(f"interval: not a duration (like 500ms, 2s, 1m): {raw.get('interval')!r}")

        self.events = raw.get("events", list(EVENT_KINDS))
        if not isinstance(self.events, list) or not self.events:
            problems.append(f"events: must be a non-empty list of {', '.join(EVENT_KINDS)}")
        else:
            for i, e in enumerate(self.events):
                if e not in EVENT_KINDS:
                    problems.append(f"events[{i}]: must be one of {', '.join(EVENT_KINDS)}, got {e!r}")

        self.include_existing = raw.get("includeExisting", False)
        if not isinstance(self.include_existing, bool):
            problems.append(f"includeExisting: must be true or false, got {self.include_existing!r}")
        if problems:
            raise Invalid("; ".join(problems))


def snapshot(cfg):
    """{path: (size, mtime_ns)} of the matching files under cfg.path."""
    files, folders = {}, [cfg.path]
    while folders:
        with os.scandir(folders.pop()) as entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if cfg.recursive:
                            folders.append(entry.path)
                    elif entry.is_file() and fnmatch.fnmatch(entry.name, cfg.pattern):
                        st = entry.stat()
                        files[entry.path] = (st.st_size, st.st_mtime_ns)
                except FileNotFoundError:
                    pass  # removed while we looked: the next look reports it
    return files


def watch(name, cfg, stopped):
    """Yields an Event for every change until stopped is set. A folder that is missing or
    unreadable ends the source with the error; the client starts it again later."""
    if not os.path.isdir(cfg.path):
        raise OSError(f"dir.path: {cfg.path}: not a directory")
    before = {} if cfg.include_existing else snapshot(cfg)
    while not stopped.is_set():
        now = snapshot(cfg)
        changes = [(p, "created", now[p]) for p in now.keys() - before.keys()]
        changes += [(p, "changed", now[p]) for p in now.keys() & before.keys() if now[p] != before[p]]
        changes += [(p, "deleted", before[p]) for p in before.keys() - now.keys()]
        for path, kind, (size, mtime_ns) in sorted(changes):
            if kind in cfg.events:
                yield event(name, path, kind, size, mtime_ns)
        before = now
        stopped.wait(cfg.interval)


def event(name, path, kind, size, mtime_ns):
    mtime = datetime.fromtimestamp(mtime_ns / 1e9, timezone.utc)
    payload = {"path": path, "event": kind, "size": size, "mtime": mtime.isoformat().replace("+00:00", "Z")}
    # The same change seen twice (a restarted source) gets the same id, so sensors can drop it.
    eid = hashlib.sha256(f"{name}\0{path}\0{kind}\0{mtime_ns}\0{size}".encode()).hexdigest()[:32]
    ev = eventing_pb2.Event(name=name, payload=json.dumps(payload).encode(), id=eid, content_type="application/json")
    ev.time.FromDatetime(datetime.now(timezone.utc))
    return ev


class Eventing(eventing_pb2_grpc.EventingServicer):
    def __init__(self):
        self.lock = threading.Lock()
        self.running = set()  # the stop flags of the open streams
        self.shutdown = False

    def stop_all(self):
        with self.lock:
            self.shutdown = True
            for stopped in self.running:
                stopped.set()

    def ValidateEventSource(self, request, context):
        try:
            Config(request.data)
        except Invalid as err:
            return eventing_pb2.ValidEventSource(is_valid=False, reason=str(err))
        return eventing_pb2.ValidEventSource(is_valid=True)

    def StartEventSource(self, request, context):
        try:
            cfg = Config(request.data)
        except Invalid as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        stopped = threading.Event()
        # Set when the client cancels (the source was removed or changed) or the server stops.
        context.add_callback(stopped.set)
        with self.lock:
            if self.shutdown:
                context.abort(grpc.StatusCode.UNAVAILABLE, "gateway server is shutting down")
            self.running.add(stopped)
        log.info("event source started: %s watching %s", request.name, cfg.path)
        try:
            yield from watch(request.name, cfg, stopped)
        except OSError as err:
            log.warning("event source %s failed: %s", request.name, err)
            context.abort(grpc.StatusCode.UNAVAILABLE, f"event source {request.name!r} failed: {err}")
        finally:
            with self.lock:
                self.running.discard(stopped)
            log.info("event source stopped: %s", request.name)
        if self.shutdown:
            context.abort(grpc.StatusCode.UNAVAILABLE, "gateway server is shutting down")


def main():
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    address = f"{os.environ.get('GATEWAY_SERVER_HOST', '') or '[::]'}:{os.environ.get('GATEWAY_SERVER_PORT', '9330')}"
    service = Eventing()
    # One worker per open stream: size it for the number of event sources you run.
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=64))
    eventing_pb2_grpc.add_EventingServicer_to_server(service, server)
    if server.add_insecure_port(address) == 0:
        sys.exit(f"dirwatch: cannot listen on {address}")
    server.start()
    log.info("dirwatch gateway serving on %s", address)

    def stop(signum, _frame):
        log.info("%s: stopping", signal.Signals(signum).name)
        service.stop_all()  # ends every stream, so the grace below is rarely needed
        server.stop(grace=5)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.wait_for_termination()
    log.info("stopped")


if __name__ == "__main__":
    main()
