"""Request schemas in the OpenAI canonical form.

Mistral's parameter names are accepted too and normalised by ``egide.protocol.mistral``
before validation, so that everything downstream sees one shape.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Wire(BaseModel):
    # Unknown fields are ignored rather than refused: SDKs add fields over time.
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class FunctionCall(_Wire):
    name: str
    arguments: str = "{}"

    @field_validator("arguments", mode="before")
    @classmethod
    def _arguments_as_text(cls, value: Any) -> Any:
        # Mistral sends arguments as an object; OpenAI as a JSON string.
        if isinstance(value, dict):
            return orjson.dumps(value).decode()
        return value


class ToolCall(_Wire):
    id: str | None = None
    type: Literal["function"] = "function"
    function: FunctionCall
    index: int | None = None


class ContentPart(_Wire):
    type: str
    text: str | None = None


class Message(_Wire):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    prefix: bool | None = None

    @model_validator(mode="after")
    def _content_required(self) -> Message:
        if self.role != "assistant" and self.content is None:
            raise ValueError(f"a {self.role} message needs a 'content'")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs the 'tool_call_id' of the call it answers")
        return self

    def text(self) -> str:
        """Text content, with text parts joined (non-text parts are refused earlier)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text or "" for part in self.content)


class FunctionDef(_Wire):
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    description: str | None = None
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None


class Tool(_Wire):
    type: Literal["function"] = "function"
    function: FunctionDef


class NamedToolChoice(_Wire):
    type: Literal["function"] = "function"
    function: dict[str, str]

    @field_validator("function")
    @classmethod
    def _has_name(cls, value: dict[str, str]) -> dict[str, str]:
        if "name" not in value:
            raise ValueError("tool_choice.function needs a 'name'")
        return value


class JSONSchemaSpec(_Wire):
    name: str = "response"
    description: str | None = None
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Wire):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaSpec | None = None

    @model_validator(mode="after")
    def _schema_present(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError(
                "response_format of type 'json_schema' needs a 'json_schema' object with a 'schema'"
            )
        return self


class StreamOptions(_Wire):
    include_usage: bool = False


Stop = str | list[str] | None


class _Sampling(_Wire):
    model: Annotated[str, Field(min_length=1)]
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    max_tokens: Annotated[int, Field(gt=0)] | None = None
    stop: Stop = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    n: Annotated[int, Field(ge=1, le=1)] | None = None
    user: str | None = None
    logprobs: bool | int | None = None
    logit_bias: dict[str, float] | None = None

    @field_validator("logprobs")
    @classmethod
    def _no_logprobs(cls, value: bool | int | None) -> bool | int | None:
        if value:
            raise ValueError("log-probabilities are not returned by Égide yet; drop 'logprobs'")
        return None

    @field_validator("logit_bias")
    @classmethod
    def _no_logit_bias(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value:
            raise ValueError("'logit_bias' is not supported yet; drop it")
        return None

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, value: Stop) -> Stop:
        if isinstance(value, list) and len(value) > 8:
            raise ValueError("at most 8 stop sequences are allowed")
        return value

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


ToolChoice = Literal["auto", "none", "required"] | NamedToolChoice


class ChatRequest(_Sampling):
    messages: Annotated[list[Message], Field(min_length=1)]
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    library_ids: list[str] = Field(default_factory=list)
    """Libraries to ground the answer on: Mistral's ``document_library`` tools end up here,
    so that backends only ever see function tools."""

    @model_validator(mode="before")
    @classmethod
    def _library_tools(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("tools"), list):
            return data
        tools, libraries = [], list(data.get("library_ids") or [])
        for tool in data["tools"]:
            if isinstance(tool, dict) and tool.get("type") == "document_library":
                ids = tool.get("library_ids")
                if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
                    raise ValueError(
                        "a document_library tool needs 'library_ids': a non-empty list of "
                        "library ids (GET /v1/libraries lists them)"
                    )
                libraries.extend(i for i in ids if i not in libraries)
            else:
                tools.append(tool)
        return {**data, "tools": tools or None, "library_ids": libraries}

    @model_validator(mode="after")
    def _tool_choice_needs_tools(self) -> ChatRequest:
        if isinstance(self.tool_choice, NamedToolChoice):
            names = {t.function.name for t in self.tools or []}
            wanted = self.tool_choice.function["name"]
            if wanted not in names:
                raise ValueError(
                    f"tool_choice names the function {wanted!r}, which is not in 'tools' "
                    f"(declared: {sorted(names) or 'none'})"
                )
        elif self.tool_choice == "required" and not self.tools:
            raise ValueError("tool_choice 'required' (or 'any') needs a non-empty 'tools' list")
        return self

    def forced_tools(self) -> list[Tool]:
        """The tools the model must choose from, or [] when it may answer in text."""
        if not self.tools or self.tool_choice in (None, "auto", "none"):
            return []
        if isinstance(self.tool_choice, NamedToolChoice):
            name = self.tool_choice.function["name"]
            return [t for t in self.tools if t.function.name == name]
        return list(self.tools)


class CompletionRequest(_Sampling):
    prompt: str | list[str]
    echo: bool = False
    suffix: str | None = None

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and len(value) != 1:
            raise ValueError("exactly one prompt per request is supported; send a list of one")
        return value

    def prompt_text(self) -> str:
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]


class EmbeddingRequest(_Wire):
    model: Annotated[str, Field(min_length=1)]
    input: str | Annotated[list[str], Field(min_length=1, max_length=2048)]
    encoding_format: Literal["float", "base64"] = "float"
    input_type: Literal["query", "passage"] = "query"
    dimensions: int | None = None
    user: str | None = None

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)
