"""The side-by-side benchmark: one client harness, one fan-out workload, every system.

``benchmarks/compare.py`` runs it. The modules without I/O (``stats``, ``checker``, ``report``,
``wire``, ``pacing``) need only the base requirements; the peers (python-socketio, Django
Channels, matplotlib) come from the ``bench`` extra and are imported only where they are used.
"""
