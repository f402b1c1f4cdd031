"""The rehearsal's story: the whole migration against the twin, ending with the customer's scoreboard.

``phases`` (the order and the selection), ``scoreboard`` (figures, verdict, JSON),
``traffic`` (the customer's orders and the ALB probe), ``runner`` (the phases themselves).
"""
