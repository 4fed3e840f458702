"""``google.colab.output``: the widget-manager switches the course calls, recorded, and a few no-ops."""
from . import CALLS


def enable_custom_widget_manager():
    CALLS.append(("output.enable_custom_widget_manager", None))


def disable_custom_widget_manager():
    CALLS.append(("output.disable_custom_widget_manager", None))


def clear(wait=False, output_tags=()):
    CALLS.append(("output.clear", None))


def eval_js(script, ignore_result=False, timeout_sec=None):
    CALLS.append(("output.eval_js", None))
    return None
