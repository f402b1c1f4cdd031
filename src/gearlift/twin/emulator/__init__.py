"""Code that runs inside the twin's emulator process (moto), never in the controller's.

- ``server``: the process's entry point (``python -m gearlift.twin.emulator.server``): moto's
  app on loopback and the twin network's gateway, serialized, plus the data plane's channel;
- ``fidelity``: where moto answers differently from AWS, answers as AWS does (each patch names
  the AWS behaviour and its documentation);
- ``lifecycle``: the image lifecycle's APIs (images from instances, Auto Scaling launches,
  target registration and health, Canonical's images, SSM patching);
- ``refresh``: the Auto Scaling instance refresh, which moto lacks;
- ``iam``: instance-role credentials, and every request not the controller's authenticated
  and authorized as IAM does (gearlift.twin.iampolicy holds the pure rules).

The data plane talks to it only through gearlift.twin.channel.
"""
