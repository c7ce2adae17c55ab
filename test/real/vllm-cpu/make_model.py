"""Builds the real-engine tier's tiny model: a byte-level BPE tokenizer trained on text Python ships
(its stdlib sources and licence) and a random-weight Llama, both seeded, so two builds are the same
model. Nothing comes from a model hub.

usage: python make_model.py OUT_DIR
The CPU attention of vLLM supports head sizes 32/64/80/...; 4 heads of 64 over a 256 hidden size.
"""
import glob
import json
import os
import sys
import sysconfig
import time

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SEED = 20261203
VOCAB = 4096
SPECIALS = ["<|pad|>", "<|bos|>", "<|eos|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def training_files():
    lib = sysconfig.get_paths()["stdlib"]
    return [os.path.join(lib, "LICENSE.txt")] + sorted(glob.glob(os.path.join(lib, "*.py")))[:150]


def build_tokenizer(out):
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train(training_files(), trainer)
    bos = tok.token_to_id("<|bos|>")
    tok.post_processor = processors.TemplateProcessing(
        single="<|bos|> $A", pair="<|bos|> $A <|bos|> $B", special_tokens=[("<|bos|>", bos)]
    )
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|bos|>",
        eos_token="<|eos|>",
        pad_token="<|pad|>",
        additional_special_tokens=SPECIALS[3:],
        model_max_length=2048,
    )
    hf.chat_template = CHAT_TEMPLATE
    hf.save_pretrained(out)
    return hf


def build_model(out, hf):
    cfg = LlamaConfig(
        vocab_size=len(hf),
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        head_dim=64,
        max_position_embeddings=2048,
        bos_token_id=hf.bos_token_id,
        eos_token_id=hf.eos_token_id,
        pad_token_id=hf.pad_token_id,
        tie_word_embeddings=False,
        rope_theta=10000.0,
        torch_dtype="bfloat16",
    )
    torch.manual_seed(SEED)
    model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.generation_config.do_sample = False
    model.save_pretrained(out)
    return sum(p.numel() for p in model.parameters())


def main():
    out = sys.argv[1]
    t0 = time.time()
    tmp = f"{out}.tmp-{os.getpid()}"
    os.makedirs(tmp)
    hf = build_tokenizer(tmp)
    params = build_model(tmp, hf)
    os.rename(tmp, out)  # atomic: a reader sees no model or a whole one
    print(json.dumps({"model": out, "vocab": len(hf), "params": params, "seconds": round(time.time() - t0, 1)}))


if __name__ == "__main__":
    main()
