"""A real CPython multiprocessing.connection peer for test_python_interop.cpp.

usage: peer.py client ADDRESS AUTHKEY    connect to our Listener, echo every message until b'quit'
       peer.py listener AUTHKEY          listen on a fresh AF_UNIX path, print it, then echo as above
       peer.py big ADDRESS               connect without a key; receive one >2 GiB message, reply
                                         with its length and checksum bytes, then send one back
An AUTHKEY of '-' means no authentication.
"""
import sys
from multiprocessing.connection import Client, Listener


def key(arg):
    return None if arg == "-" else arg.encode()


def echo(conn):
    while True:
        m = conn.recv_bytes()
        if m == b"quit":
            conn.send_bytes(b"bye from python %d.%d" % sys.version_info[:2])
            return
        conn.send_bytes(m)


def main():
    mode = sys.argv[1]
    if mode == "client":
        echo(Client(sys.argv[2], authkey=key(sys.argv[3])))
    elif mode == "listener":
        with Listener(authkey=key(sys.argv[2])) as listener:
            print(listener.address, flush=True)
            with listener.accept() as conn:
                echo(conn)
    elif mode == "big":
        conn = Client(sys.argv[2])
        m = conn.recv_bytes()
        conn.send_bytes(b"%d %d %d" % (len(m), m[0], m[-1]))
        del m
        n = 2**31 + 7
        out = bytearray(b"\x42") * n
        out[-1] = 0x43
        conn.send_bytes(out)
        conn.recv_bytes()  # wait until the other side has it all
    else:
        raise SystemExit("unknown mode " + mode)


if __name__ == "__main__":
    main()
