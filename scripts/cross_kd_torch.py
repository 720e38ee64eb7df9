# The PyTorch replica of bench/cross-kd.ts (issue #23: cross-tokenizer KD vs SeqKD), which writes its inputs and
# checks it against our engine. Two modes:
#   teacher  samples the embedded teacher (HF LlamaForCausalLM on public/models/brown-teacher) at temperature 1 from
#            the given prompt ids, then teacher-forces prompt + answer and gives per answer token its top-K and the
#            sampled token's log-softmax at τ = 1 (what the engine's teacher phase computes);
#   train    trains the students exactly as our Trainer does: same initial weights (our HF export of initParams),
#            the same batches (ids, labels, weights from our BatchLoader, written per step), the same teacher signal
#            per batch position (data.ts teacherTopK: top-k ids + logprobs, ULD probabilities + weights), the same LR
#            per step (our lrAt), the same optimizer (AdamW, decay on matrices and embeddings, global-norm clipping),
#            and the same objective (src/kernels/loss/loss.ref.ts, uld.ref.ts):
#              loss = (ceWeight·Σ w·CE + kdWeight·Σ w·KD_topk + uldWeight·Σ u·ULD) / Σ w
#            CE at temperature 1; KD = KL(t ‖ softmax(z/τ)) with the top-k teacher under the run's topkPolicy
#            (renormalize / uniform; missing mass floored at 1e-12); ULD = Σ_{i<K} |p_(i) − q_i| + Σ_{i≥K} p_(i) with
#            p = softmax(z/τ) sorted descending and q the teacher row (sorted, zero-padded).
#   python scripts/cross_kd_torch.py teacher|train plan.json > out.jsonl   (one JSON object per line)
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM

torch.set_num_threads(int(os.environ.get('CROSS_KD_THREADS', '2')))
MIN_MISSING_MASS = 1e-12


def out(o):
    print(json.dumps(o), flush=True)


def load_model(path):
    m = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    # HF builds the embedding with padding_idx = pad_token_id (our export names end-of-text), whose row then gets no
    # gradient from the input side; our engine's embedding backward gives every row its whole gradient.
    m.get_input_embeddings().padding_idx = None
    return m


# ---------------------------------------------------------------------------------------------------- teacher
@torch.no_grad()
def teacher_phase(plan):
    m = load_model(plan['teacherDir']).eval()
    eos, K, n_new = plan['eos'], plan['K'], plan['answerTokens']
    t0 = time.time()
    for i, prompt in enumerate(plan['prompts']):
        g = torch.Generator().manual_seed(plan['seedBase'] + i)
        ids = torch.tensor([prompt])
        res = m(input_ids=ids, use_cache=True)
        past, logits = res.past_key_values, res.logits[0, -1]
        answer = []
        for _ in range(n_new):
            nxt = int(torch.multinomial(torch.softmax(logits.double(), -1), 1, generator=g))
            if nxt == eos:
                break
            answer.append(nxt)
            res = m(input_ids=torch.tensor([[nxt]]), past_key_values=past, use_cache=True)
            past, logits = res.past_key_values, res.logits[0, -1]
        rows = []
        if answer:
            seq = torch.tensor([prompt + answer])
            lp = torch.log_softmax(m(input_ids=seq).logits[0].double(), -1)  # (P + A, V)
            P = len(prompt)
            for j, tok in enumerate(answer):
                row = lp[P - 1 + j]
                top = torch.topk(row, K)
                rows.append({'logprob': float(row[tok]), 'ids': top.indices.tolist(), 'logprobs': top.values.tolist()})
        out({'kind': 'teacher-record', 'i': i, 'answer': answer, 'rows': rows, 's': round(time.time() - t0, 1)})


# ------------------------------------------------------------------------------------------------------ train
def read(path, dtype, shape):
    return torch.from_numpy(np.fromfile(path, dtype=dtype).reshape(shape).copy())


def batches_of(files, steps, N, k):
    """The per-step arrays a run's files hold, as tensors (steps, N[, k])."""
    b = {'ids': read(files['ids'], np.uint32, (steps, N)).long(), 'labels': read(files['labels'], np.uint32, (steps, N)).long(),
         'weights': read(files['weights'], np.float32, (steps, N))}
    if 'tIds' in files:
        b['tIds'] = read(files['tIds'], np.uint32, (steps, N, k)).long()
        b['tLps'] = read(files['tLps'], np.float32, (steps, N, k))
    if 'uldP' in files:
        b['uldP'] = read(files['uldP'], np.float32, (steps, N, k))
        b['uldW'] = read(files['uldW'], np.float32, (steps, N))
    return b


def logits_of(m, ids, B, sel, Vr):
    """The student's logits (n, Vr) at the rows `sel` only (rows of weight 0 add nothing to any term)."""
    h = m.model(input_ids=ids.view(B, -1)).last_hidden_state.reshape(ids.shape[0], -1)
    return m.lm_head(h[sel])[:, :Vr]


def topk_kd_rows(ls, ids, lps, tau, policy):
    """KL(t ‖ s) per row for a top-k teacher (loss.ref.ts teacherBins, objective fkl); ls = log softmax(z/τ) (n, V)."""
    V, k = ls.shape[-1], ids.shape[-1]
    ls_k = ls.gather(1, ids)  # (n, k)
    q = torch.softmax(lps / tau, -1)
    if policy == 'renormalize':
        return torch.xlogy(q, q).sum(-1) - (q * ls_k).sum(-1)
    if policy != 'uniform':
        raise ValueError(f'topk policy {policy!r}: the replica implements renormalize and uniform')
    m = lps.exp().sum(-1, keepdim=True)
    tk = m * q
    kl = torch.xlogy(tk, tk).sum(-1) - (tk * ls_k).sum(-1)
    if k < V:
        tu = torch.clamp(1 - m[:, 0], min=MIN_MISSING_MASS) / (V - k)
        kl = kl + (V - k) * tu * torch.log(tu) - tu * (ls.sum(-1) - ls_k.sum(-1))
    return kl


def uld_rows(ls, q):
    """ULD per row (uld.ref.ts): L1 between the sorted student probabilities p = exp(ls) (ls = log softmax(z/τ)) and
    the sorted teacher row q (n, K), the student's entries past K against 0."""
    p = ls.exp()
    top = torch.topk(p, q.shape[-1], sorted=True).values
    return (top - q).abs().sum(-1) + p.sum(-1) - top.sum(-1)


def step_loss(m, b, s, run, Vr):
    w = b['weights'][s]
    sel = w > 0
    z = logits_of(m, b['ids'][s], run['B'], sel, Vr)  # (n, Vr)
    ws = w[sel]
    wsum = ws.sum()
    ls1 = torch.log_softmax(z, -1)  # CE at temperature 1
    ce = -(ls1.gather(1, b['labels'][s][sel][:, None])[:, 0] * ws).sum()
    kd = torch.zeros(())
    uld = torch.zeros(())
    tau = run['temperature']
    lst = ls1 if tau == 1 else torch.log_softmax(z / tau, -1)
    if run['objective'] != 'none':
        if run['objective'] != 'fkl':
            raise ValueError(f"objective {run['objective']!r}: the replica implements fkl")
        kd = (topk_kd_rows(lst, b['tIds'][s][sel], b['tLps'][s][sel], tau, run['topkPolicy']) * ws).sum()
    if 'uldP' in b:
        uw = b['uldW'][s][sel]
        on = uw > 0
        if on.any():
            uld = (uld_rows(lst[on], b['uldP'][s][sel][on]) * uw[on]).sum()
    loss = (run['ceWeight'] * ce + run['kdWeight'] * kd + run['uldWeight'] * uld) / wsum
    return loss, ce / wsum, kd / wsum, uld / wsum


@torch.no_grad()
def evaluate(m, ev, Vr, B, batches=None):
    ce_sum, n = 0.0, 0.0
    for s in range(ev['ids'].shape[0] if batches is None else min(batches, ev['ids'].shape[0])):
        w = ev['weights'][s]
        sel = w > 0
        if not sel.any():
            continue
        ls = torch.log_softmax(logits_of(m, ev['ids'][s], B, sel, Vr).double(), -1)
        ce_sum += -(ls.gather(1, ev['labels'][s][sel][:, None])[:, 0] * w[sel].double()).sum().item()
        n += w.sum().item()
    loss = ce_sum / n
    return {'loss': loss, 'ppl': float(np.exp(loss)), 'tokens': n}


def train_phase(plan):
    B, N, Vr, hp = plan['B'], plan['B'] * plan['T'], plan['realVocab'], plan['hp']
    ev = batches_of(plan['eval'], plan['eval']['batches'], N, 0)
    for run in plan['runs']:
        run = {**run, 'B': B}
        m = load_model(run['init'])
        m.train()
        decay = [p for _, p in m.named_parameters() if p.dim() >= 2]
        nodecay = [p for _, p in m.named_parameters() if p.dim() < 2]
        opt = torch.optim.AdamW([{'params': decay, 'weight_decay': hp['weightDecay']}, {'params': nodecay, 'weight_decay': 0.0}],
                                lr=run['lrs'][0], betas=(hp['beta1'], hp['beta2']), eps=hp['eps'])
        steps = len(run['lrs'])
        b = batches_of(run['files'], steps, N, run['k'])
        t0 = time.time()
        for s in range(steps):
            for g in opt.param_groups:
                g['lr'] = run['lrs'][s]
            loss, ce, kd, uld = step_loss(m, b, s, run, Vr)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gn = torch.nn.utils.clip_grad_norm_(m.parameters(), hp['clipNorm']) if hp['clipNorm'] > 0 else torch.zeros(())
            opt.step()
            n = s + 1
            if n <= plan['logSteps'] or n == 1 or n % 25 == 0 or n == steps:
                out({'kind': 'step', 'run': run['name'], 'step': n, 'loss': loss.item(), 'ce': ce.item(), 'kd': kd.item(), 'uld': uld.item(),
                     'gradNorm': gn.item(), 'lr': run['lrs'][s], 's': round(time.time() - t0, 1)})
        m.eval()
        out({'kind': 'eval', 'run': run['name'], 'step': steps, **evaluate(m, ev, Vr, B), 'trainSeconds': round(time.time() - t0, 1)})
        out({'kind': 'check-eval', 'run': run['name'], 'step': steps, **evaluate(m, ev, Vr, B, plan['checkEvalBatches'])})
        m.save_pretrained(run['save'], safe_serialization=True)
        out({'kind': 'run-done', 'run': run['name']})


if __name__ == '__main__':
    mode, plan_path = sys.argv[1], sys.argv[2]
    plan = json.load(open(plan_path))
    if mode == 'teacher':
        teacher_phase(plan)
    elif mode == 'train':
        train_phase(plan)
    else:
        raise SystemExit(f'mode must be teacher or train, got {mode!r}')
