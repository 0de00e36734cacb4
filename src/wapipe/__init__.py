"""wapipe: an open pipeline for the WhatsApp Business Cloud API.

One import namespace over the project's top-level folders: ``wapipe.cli``, ``wapipe.ingress``,
``wapipe.workers``, ``wapipe.shared``, ``wapipe.sandbox``, ``wapipe.examples``. Each is a link in
this folder to its folder at the top of the repository (docs/layout.md says why).
"""
