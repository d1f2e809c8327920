"""Pre-flight checks inside training frameworks: inspect the live model at the real crop before the first step.

* ``atrous_advisor.integrations.mmengine.AtrousAdvisorHook`` (registered in mmengine's ``HOOKS`` on import)
* ``atrous_advisor.integrations.lightning.AtrousAdvisorCallback``
* ``atrous_advisor.integrations.transformers.AtrousAdvisorCallback`` (a ``transformers.TrainerCallback``)

Each needs its framework installed (extras ``mmengine``, ``lightning``, ``transformers``); importing this
package imports none of them.
"""
