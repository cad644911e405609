#!/usr/bin/python3
"""A TCP proxy for fault tests: tcp_proxy.py LISTEN_PORT TARGET_HOST TARGET_PORT

Forwards every connection made to 127.0.0.1:LISTEN_PORT to TARGET, both ways.
The test drives it with signals (bindings/lua/jetlua/testing.lua, T.proxy):
  SIGSTOP / SIGCONT  freeze / thaw: nothing is read or forwarded, so the
                     peers' socket buffers fill and their writes stall, as
                     with a hung server or a dead network path
  SIGUSR1            cut: close every connection (new ones are accepted)
It buffers at most 256 KiB per direction itself, and exits on SIGTERM.
"""
import selectors
import signal
import socket
import sys

CAP = 256 * 1024
cut_requested = False


def on_usr1(signum, frame):
    global cut_requested
    cut_requested = True


class Pipe:
    """One direction: bytes read from src wait in buf until dst takes them."""

    def __init__(self, src, dst):
        self.src, self.dst, self.buf = src, dst, bytearray()


def main():
    listen_port, host, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    signal.signal(signal.SIGUSR1, on_usr1)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    sel = selectors.DefaultSelector()
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", listen_port))
    lsock.listen(64)
    lsock.setblocking(False)
    sel.register(lsock, selectors.EVENT_READ, None)
    pairs = []          # [(pipe a->b, pipe b->a)]

    def interest(sock):
        ev = 0
        for a, b in pairs:
            for p in (a, b):
                if p.src is sock and len(p.buf) < CAP:
                    ev |= selectors.EVENT_READ
                if p.dst is sock and p.buf:
                    ev |= selectors.EVENT_WRITE
        return ev

    def registered(sock):
        try:
            sel.get_key(sock)
            return True
        except (KeyError, ValueError):
            return False

    def update(sock):
        ev = interest(sock)
        if registered(sock):
            if ev:
                sel.modify(sock, ev)
            else:
                sel.unregister(sock)
        elif ev:
            sel.register(sock, ev)

    def close_pair(pair):
        for s in (pair[0].src, pair[0].dst):
            if registered(s):
                sel.unregister(s)
            try:
                s.close()
            except OSError:
                pass
        if pair in pairs:
            pairs.remove(pair)

    global cut_requested
    while True:
        if cut_requested:
            cut_requested = False
            for pair in list(pairs):
                close_pair(pair)
        for key, ev in sel.select(timeout=0.05):
            sock = key.fileobj
            if sock is lsock:
                try:
                    c, _ = lsock.accept()
                except OSError:
                    continue
                try:
                    t = socket.create_connection((host, port), timeout=5)
                except OSError:
                    c.close()
                    continue
                for s in (c, t):
                    s.setblocking(False)
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                pair = (Pipe(c, t), Pipe(t, c))
                pairs.append(pair)
                update(c)
                update(t)
                continue
            pair = next((p for p in pairs if sock in (p[0].src, p[0].dst)), None)
            if pair is None:
                continue
            dead = False
            for p in pair:
                if p.src is sock and ev & selectors.EVENT_READ and len(p.buf) < CAP:
                    try:
                        data = sock.recv(CAP - len(p.buf))
                    except BlockingIOError:
                        data = None
                    except OSError:
                        data = b""
                    if data == b"":
                        dead = True
                    elif data:
                        p.buf += data
                if p.dst is sock and ev & selectors.EVENT_WRITE and p.buf:
                    try:
                        n = sock.send(p.buf)
                        del p.buf[:n]
                    except BlockingIOError:
                        pass
                    except OSError:
                        dead = True
            if dead:
                close_pair(pair)
                continue
            update(pair[0].src)
            update(pair[0].dst)


if __name__ == "__main__":
    main()
