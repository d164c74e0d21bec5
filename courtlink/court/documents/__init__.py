"""Documents: orders, settlements, payment proofs, uploads and receipts; their lifecycle and
the Registry that changes them."""
