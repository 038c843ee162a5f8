"""``changelake``: the operator's command and status page for a deployed (or local) changelake stack.

Not part of the Lambda layer: it runs on an operator's machine (or CI) with their AWS credentials,
and reads the stack the way CloudFormation describes it.
"""
