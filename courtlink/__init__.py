"""Courtlink: remote coordination between a court and a detention center, by video and by document.

Packages, from the edges in (each imports only those after it):

- ``cli``: the ``courtlink`` command; ``bench``: benchmarks, the headless participant, the
  transcoding baseline.
- ``web``: the HTTP edge (app factory, API, pages); ``signaling``: the Socket.IO adapter;
  ``media``: the SFU.
- ``live``: what a session is while it runs (presence, the media port, the hearing).
- ``papers``: documents as files (PDF rendering, the court's seal, uploads, storage on disk).
- ``court``: the domain and the services that change it; ``storage``: its tables and queries.
- ``config``, ``errors``, ``clock``, ``metrics``: shared by all.
"""

__version__ = "0.1.0"
