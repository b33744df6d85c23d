"""Weight registry (installed as ``lm_zoo.pretrained``). Filled by issue 3."""
