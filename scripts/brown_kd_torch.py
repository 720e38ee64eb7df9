# The PyTorch replica of our trainer for the Brown KD-vs-SFT study (scripts/brown-kd.ts writes its inputs and
# checks it against our engine). Same model (HF LlamaForCausalLM loading our safetensors export of initParams),
# same batches (the row order our BatchLoader yields, given as row indices), same LR per step (our lrAt, given as
# a list), same objective (ceWeight * CE + kdWeight * KL(teacher || student) at temperature tau, means over target
# tokens), same optimizer (torch AdamW, decay on matrices and embeddings only; global-norm clipping as ours).
# The teacher is trained first by the same loop (CE only) and saved as an HF folder our importer reads.
#   python scripts/brown_kd_torch.py plan.json > replica.jsonl   (one JSON object per line)
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM

torch.set_num_threads(int(os.environ.get('BROWN_KD_THREADS', os.cpu_count() or 1)))
plan = json.load(open(sys.argv[1]))
T, B = plan['T'], plan['B']
device = plan.get('device', 'cpu')
if device == 'cuda':
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def out(o):
    print(json.dumps(o), flush=True)


def load_rows(path):
    return torch.from_numpy(np.fromfile(path, dtype=np.uint16).astype(np.int64)).view(-1, T + 1).to(device)


rows = load_rows(plan['rows'])
eval_rows = load_rows(plan['evalRows'])[: plan['evalBatches'] * B]
eval_set = [eval_rows[i * B:(i + 1) * B] for i in range(eval_rows.shape[0] // B)]


def load_model(path):
    m = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to(device)
    # HF builds the embedding with padding_idx = pad_token_id (our export names end-of-text), whose row then gets no
    # gradient from the input side; our engine's embedding backward gives every row its whole gradient.
    m.get_input_embeddings().padding_idx = None
    m.train()
    return m


def kl_rows(teacher_logits, student_logits, tau):
    """KL(softmax(zt/tau) || softmax(z/tau)) per row."""
    lt = F.log_softmax(teacher_logits / tau, dim=-1)
    ls = F.log_softmax(student_logits / tau, dim=-1)
    return (lt.exp() * (lt - ls)).sum(-1)


@torch.no_grad()
def evaluate(m, teacher=None, batches=None):
    ce_sum, n, kl_sum, agree = 0.0, 0, 0.0, 0
    for r in eval_set if batches is None else eval_set[:batches]:
        ids, labels = r[:, :T], r[:, 1:]
        z = m(input_ids=ids).logits.reshape(-1, m.config.vocab_size)
        ce_sum += F.cross_entropy(z, labels.reshape(-1), reduction='sum').item()
        n += labels.numel()
        if teacher is not None:
            zt = teacher(input_ids=ids).logits.reshape(-1, z.shape[-1])
            kl_sum += kl_rows(zt, z, 1.0).sum().item()
            agree += (zt.argmax(-1) == z.argmax(-1)).sum().item()
    loss = ce_sum / n
    res = {'loss': loss, 'ppl': float(np.exp(loss))}
    if teacher is not None:
        res.update(klToTeacher=kl_sum / n, top1Agreement=agree / n)
    return res


def train(run, teacher=None):
    m = load_model(run['init'])
    hp = plan['hp']
    decay = [p for _, p in m.named_parameters() if p.dim() >= 2]
    nodecay = [p for _, p in m.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': hp['weightDecay']}, {'params': nodecay, 'weight_decay': 0.0}],
                            lr=run['lrs'][0], betas=(hp['beta1'], hp['beta2']), eps=hp['eps'])
    order = torch.from_numpy(np.fromfile(run['order'], dtype=np.uint32).astype(np.int64)).view(-1, B).to(device)
    steps, kd_w, ce_w, tau = len(run['lrs']), run['kdWeight'], run['ceWeight'], run['temperature']
    assert order.shape[0] == steps, f"{run['name']}: {order.shape[0]} batches for {steps} steps"
    t0 = time.time()
    for step in range(steps):
        for g in opt.param_groups:
            g['lr'] = run['lrs'][step]
        r = rows[order[step]]
        ids, labels = r[:, :T], r[:, 1:]
        z = m(input_ids=ids).logits.reshape(-1, m.config.vocab_size)
        ce = F.cross_entropy(z, labels.reshape(-1))
        kd = torch.zeros(())
        if kd_w > 0:
            with torch.no_grad():
                zt = teacher(input_ids=ids).logits.reshape(-1, z.shape[-1])
            kd = kl_rows(zt, z, tau).mean()
        loss = ce_w * ce + kd_w * kd
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(m.parameters(), hp['clipNorm']) if hp['clipNorm'] > 0 else torch.zeros(())
        opt.step()
        s = step + 1
        if s <= plan['logEverySteps'] or s % 25 == 0 or s == steps:
            out({'kind': 'step', 'run': run['name'], 'step': s, 'loss': loss.item(), 'ce': ce.item(), 'kd': kd.item(),
                 'gradNorm': gn.item(), 'lr': run['lrs'][step], 'ms': round((time.time() - t0) * 1000)})
        if s % plan['evalEvery'] == 0 or s == steps:
            out({'kind': 'eval', 'run': run['name'], 'step': s, **evaluate(m, teacher)})
    out({'kind': 'check-eval', 'run': run['name'], 'step': steps, **evaluate(m, teacher, plan['checkEvalBatches'])})
    m.save_pretrained(run['save'], safe_serialization=True)
    return m


teacher = None
if plan.get('teacher'):
    teacher = train(plan['teacher'])
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    out({'kind': 'teacher-saved', 'dir': plan['teacher']['save']})
elif plan.get('teacherDir'):
    teacher = load_model(plan['teacherDir']).eval()
for run in plan['students']:
    train(run, teacher)
    out({'kind': 'run-done', 'run': run['name']})
