"""Offline analysis of recorded episodes: follow the prompted target frame by frame, run the pipeline on it,
flag the frames a grasp would have failed on, and write a results table, a summary and a report per episode.

Entry points: :func:`run_analysis` (many episodes, local processes or Ray), :func:`run_episode` (one episode
into its output folder), :func:`analyze_source` (the computation, no files). Reads every recording
:func:`graspseg.capture.sources.list_episodes` finds. The command line is ``graspseg analyze``.
"""

from .config import ANALYSIS_SCHEMA_VERSION, AnalysisConfig
from .episode import EpisodeAnalysis, analyze_source, event_delays
from .runner import EXECUTORS, run_analysis, run_episode
from .table import COLUMNS, TIMING_COLUMNS, read_table

__all__ = [
    "ANALYSIS_SCHEMA_VERSION", "COLUMNS", "EXECUTORS", "TIMING_COLUMNS", "AnalysisConfig", "EpisodeAnalysis",
    "analyze_source", "event_delays", "read_table", "run_analysis", "run_episode",
]
