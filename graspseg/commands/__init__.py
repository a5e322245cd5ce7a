"""Sub-commands of the ``graspseg`` command line, one module each (see ``graspseg.cli``)."""
