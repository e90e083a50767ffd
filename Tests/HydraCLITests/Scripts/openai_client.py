"""Talks to `hydra serve` with the official `openai` client; prints what it saw as JSON.

Usage: openai_client.py BASE_URL MODEL
"""
import json
import sys

import openai

base, model = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0, timeout=300)
question = [{"role": "user", "content": "What is the capital of France?"}]
seen = {}

seen["models"] = [m.id for m in client.models.list().data]

whole = client.chat.completions.create(model=model, messages=question, max_tokens=24, temperature=0)
seen["chat"] = {"text": whole.choices[0].message.content, "role": whole.choices[0].message.role,
                "finish_reason": whole.choices[0].finish_reason,
                "usage": [whole.usage.prompt_tokens, whole.usage.completion_tokens, whole.usage.total_tokens]}

pieces, usage, finish = [], None, None
for chunk in client.chat.completions.create(model=model, messages=question, max_tokens=24, temperature=0,
                                            stream=True, stream_options={"include_usage": True}):
    if chunk.usage is not None:
        usage = [chunk.usage.prompt_tokens, chunk.usage.completion_tokens, chunk.usage.total_tokens]
    for choice in chunk.choices:
        if choice.delta.content:
            pieces.append(choice.delta.content)
        finish = choice.finish_reason or finish
seen["chat_stream"] = {"text": "".join(pieces), "pieces": len(pieces), "usage": usage, "finish_reason": finish}

completion = client.completions.create(model=model, prompt="The capital of France is", max_tokens=6, temperature=0)
seen["completion"] = {"text": completion.choices[0].text, "finish_reason": completion.choices[0].finish_reason,
                      "usage": [completion.usage.prompt_tokens, completion.usage.completion_tokens]}

texts = [c.choices[0].text for c in client.completions.create(model=model, prompt="The capital of France is", max_tokens=6,
                                                               temperature=0, stream=True)]
seen["completion_stream"] = "".join(texts)

try:
    client.chat.completions.create(model="no-such-model", messages=question, max_tokens=4)
    seen["missing"] = "answered"
except openai.NotFoundError as error:
    seen["missing"] = {"status": error.status_code, "message": error.body.get("message") if isinstance(error.body, dict) else str(error.body)}

print(json.dumps(seen))
