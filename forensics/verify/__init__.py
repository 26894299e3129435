"""Batch verification of identity photos (``forensics verify-ids``).

Library entry point: :func:`forensics.verify.runner.run_verification` with items from
:func:`forensics.verify.inputs.load_items` and a :class:`forensics.verify.policy.Policy`.
"""
