"""What runs a task: a family declares its kinds, the worker pulls their work, fetches and
probes the input, hands the handler a TaskContext, stores its outputs and reports progress;
child tasks run on another family.
"""

from taskkit.runtime.children import run_child
from taskkit.runtime.context import TaskContext, scene_cuts
from taskkit.runtime.family import Family, Kind
from taskkit.runtime.inputs import own_file_key
from taskkit.runtime.outcome import Outcome, Output, output_name
from taskkit.runtime.worker import Worker

__all__ = [
    "Family",
    "Kind",
    "Outcome",
    "Output",
    "TaskContext",
    "Worker",
    "output_name",
    "own_file_key",
    "run_child",
    "scene_cuts",
]
