"""The prompt language: parse tree, AND, schedules, emphasis weights, extra networks. No torch.

Order of use, as in A1111: strip_comments (when the setting is on), extract_extra_networks on the
positive prompt, split_and (positive prompts only), prompt_schedule per part, text_at_call per model
call, parse_attention per text.
"""

from modules.prompting.attention import parse_attention
from modules.prompting.comments import strip_comments
from modules.prompting.counting import texts_to_count
from modules.prompting.extra_networks import ExtraNetworkCall, extract_extra_networks
from modules.prompting.multicond import WeightedPrompt, split_and
from modules.prompting.parser import parse
from modules.prompting.schedule import (
    Schedule,
    StepClock,
    index_at_call,
    prompt_schedule,
    schedule_of,
    text_at_call,
)
from modules.prompting.tree import (
    Alternate,
    Deemphasis,
    Edit,
    Emphasis,
    Node,
    Prompt,
    Text,
    Weighted,
    to_source,
)

__all__ = [
    "Alternate",
    "Deemphasis",
    "Edit",
    "Emphasis",
    "ExtraNetworkCall",
    "Node",
    "Prompt",
    "Schedule",
    "StepClock",
    "Text",
    "Weighted",
    "WeightedPrompt",
    "extract_extra_networks",
    "index_at_call",
    "parse",
    "parse_attention",
    "prompt_schedule",
    "schedule_of",
    "split_and",
    "strip_comments",
    "text_at_call",
    "texts_to_count",
    "to_source",
]
