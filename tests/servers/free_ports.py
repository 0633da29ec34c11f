"""Prints a base port B such that B + offset is a free loopback port for
every offset given (ranges like 0-19), with B + offset below the kernel's
ephemeral range so that outgoing connections do not take them.

Usage: python3 free_ports.py 0-19            (20 consecutive ports)
       python3 free_ports.py 0-4 10000-10004 (two blocks, 10000 apart)
"""

import random
import socket
import sys

offsets = []
for arg in sys.argv[1:]:
    low, _, high = arg.partition("-")
    offsets.extend(range(int(low), int(high or low) + 1))
for _ in range(500):
    base, socks = random.randint(20000, 32000 - max(offsets)), []
    try:
        for offset in offsets:
            socks.append(socket.socket())
            socks[-1].bind(("127.0.0.1", base + offset))
        print(base)
        break
    except OSError:
        pass
    finally:
        for s in socks:
            s.close()
