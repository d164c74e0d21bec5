"""Documents: orders, settlement agreements, transcripts, payment proofs, uploads and receipts.

lifecycle.py is the pure lifecycle and rights table; registry.py the facade callers use, over
orders.py, settlement.py, transcripts.py, signing.py (what the parties sign: settlements and
transcripts), payments.py, uploads.py, delivery.py, reading.py and reconcile.py, whose steps
all follow the one template of steps.py and share desk.py (ports in ports.py).
"""
