// Pure functions behind the pages: status from conditions, rollout progress, form
// validation, fleet summaries. Tested in logic.test.ts.
import type { Application, Condition, Device, RolloutSpec } from './types';

export type Tone = 'success' | 'error' | 'warning' | 'info' | 'default';

export interface Status {
  label: string;
  tone: Tone;
  reason?: string;
  message?: string;
}

// Reasons of a False Ready that mean "work in progress", not failure.
const progressing = new Set(['Pending', 'Building', 'Validating', 'RollingOut', 'AwaitingCSR', 'DeploymentNotReady']);
const held = new Set(['RolloutPaused', 'NeverConnected', 'SessionClosed', 'Disabled', 'NoTargets']);

/** words splits a CamelCase reason into words: "RolloutPaused" -> "Rollout paused". */
export function words(s: string): string {
  const w = s.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase();
  return w.charAt(0).toUpperCase() + w.slice(1);
}

/**
 * statusFromConditions summarises an object by its Ready condition. A condition
 * observed for an older generation than the object's is "Updating": the controller has
 * not acted on the latest spec yet.
 */
export function statusFromConditions(conditions: Condition[] | undefined, generation?: number, type = 'Ready'): Status {
  const c = conditions?.find((x) => x.type === type);
  if (!c) return { label: 'Unknown', tone: 'default', message: `no ${type} condition yet: the operator has not reconciled it` };
  const base = { reason: c.reason, message: c.message };
  if (generation !== undefined && c.observedGeneration !== undefined && c.observedGeneration < generation) {
    return { ...base, label: 'Updating', tone: 'info' };
  }
  if (c.status === 'True') return { ...base, label: type, tone: 'success' };
  if (c.status === 'Unknown') return { ...base, label: c.reason ? words(c.reason) : 'Unknown', tone: 'info' };
  if (c.reason && progressing.has(c.reason)) return { ...base, label: words(c.reason), tone: 'info' };
  if (c.reason && held.has(c.reason)) return { ...base, label: words(c.reason), tone: 'warning' };
  return { ...base, label: c.reason ? words(c.reason) : `Not ${type.toLowerCase()}`, tone: 'error' };
}

/** phaseTone colours a Device or Application phase. */
export function phaseTone(phase: string | undefined): Tone {
  switch (phase) {
    case 'Running':
    case 'Connected':
      return 'success';
    case 'Failed':
      return 'error';
    case 'Paused':
    case 'Disconnected':
      return 'warning';
    case 'Building':
    case 'Validating':
    case 'RollingOut':
    case 'Enrolled':
      return 'info';
    default:
      return 'default';
  }
}

export interface Progress {
  /** percent of targeted devices that run the module, 0..100 */
  percent: number;
  succeeded: number;
  failed: number;
  targeted: number;
  /** "step 2 of 3" for canary rollouts, "" otherwise */
  step: string;
  /** pipeline stage: 0 build, 1 validate, 2 roll out, 3 running */
  stage: number;
  done: boolean;
}

/** rolloutProgress computes an Application's progress from its status. */
export function rolloutProgress(app: Application): Progress {
  const r = app.status?.rollout;
  const phase = app.status?.phase ?? 'Pending';
  const stage = { Pending: 0, Building: 0, Validating: 1, RollingOut: 2, Paused: 2, Running: 3, Failed: -1 }[phase] ?? 0;
  const targeted = r?.targeted ?? 0;
  const succeeded = r?.succeeded ?? 0;
  const failed = r?.failed ?? 0;
  const percent = targeted > 0 ? Math.min(100, Math.round((100 * succeeded) / targeted)) : 0;
  const step = r && r.steps > 1 ? `step ${Math.min(r.step + 1, r.steps)} of ${r.steps}` : '';
  const current = r !== undefined && r.digest === app.status?.build?.digest;
  return { percent: current ? percent : 0, succeeded, failed, targeted, step, stage, done: phase === 'Running' };
}

/** policySummary describes an Application's rollout policy, one line per setting. */
export function policySummary(r: RolloutSpec | undefined): string[] {
  if (!r) return [];
  const out: string[] = [];
  const approvals = (r.steps ?? []).map((s, i) => (s.requireApproval ? i + 1 : 0)).filter((n) => n > 0);
  if (approvals.length) out.push(`approval before step ${approvals.join(', ')}`);
  if (r.rate) {
    const g = r.rate.growth;
    let line = `${r.rate.devicesPerMinute} devices/min`;
    if (g) {
      const when = g.afterSucceeded ? `${g.afterSucceeded} succeeded` : `${g.afterStarted} started`;
      line += `, ×${g.factor} after every ${when} (at most ${g.maxDevicesPerMinute ?? 1000}/min)`;
    }
    out.push(line);
  }
  for (const c of r.abortCriteria ?? []) out.push(`abort at ${c.thresholdPercent}% ${c.failureType} failures after ${c.minFinished ?? 1} finished`);
  for (const x of r.retries ?? []) out.push(`retry ${x.failureType} failures ${x.attempts}× (backoff ${x.backoff ?? '30s'}, doubling)`);
  if (r.deviceTimeout) out.push(`a device must run within ${r.deviceTimeout}`);
  const s = r.schedule;
  if (s?.notBefore) out.push(`not before ${new Date(s.notBefore).toLocaleString()}`);
  if (s?.endBy) out.push(`end by ${new Date(s.endBy).toLocaleString()}, then ${(s.endBehavior ?? 'Cancel').toLowerCase()}`);
  const m = r.maintenance;
  if (m) {
    const ws = m.windows.map((w) => `${w.days?.length ? w.days.join('/') : 'daily'} ${w.start} for ${w.duration}`);
    out.push(`maintenance windows (${m.timeZone ?? 'UTC'}): ${ws.join('; ')}`);
  }
  return out;
}

/** Waiting is what a rollout waits for, for the rollout view. */
export interface Waiting {
  /** the RolledOut condition's reason, e.g. WaitingForApproval */
  reason: string;
  message: string;
  /** the 1-based step an Approve button approves, when a step waits for approval */
  approveStep?: number;
  /** when the rollout moves by itself next */
  nextAt?: string;
  /** the policy can never finish (reason CannotFinish) */
  blocked: boolean;
}

const waitReasons = ['WaitingForApproval', 'WaitingForSchedule', 'OutsideMaintenanceWindow', 'RateLimited', 'RolloutPaused', 'CannotFinish', 'ScheduleEnded'];

/** rolloutWaiting says what an Application's rollout waits for, or undefined. */
export function rolloutWaiting(app: Application): Waiting | undefined {
  const c = app.status?.conditions?.find((x) => x.type === 'RolledOut');
  const r = app.status?.rollout;
  if (!c || !waitReasons.includes(c.reason ?? '')) {
    return r?.waitingFor ? { reason: c?.reason ?? '', message: r.waitingFor, nextAt: r.nextActionAt, blocked: false } : undefined;
  }
  return {
    reason: c.reason!,
    message: r?.waitingFor || c.message || '',
    approveStep: c.reason === 'WaitingForApproval' && r ? r.step + 1 : undefined,
    nextAt: r?.nextActionAt,
    blocked: c.reason === 'CannotFinish',
  };
}

export type SourceMode = 'source' | 'upload';

export interface AppForm {
  name: string;
  mode: SourceMode;
  language: string;
  code: string;
  /** the uploaded module's first bytes and size (undefined: none chosen) */
  wasm?: { size: number; head: Uint8Array };
  /** "key=value, key2=value2" */
  selector: string;
  /** one key=value per line */
  config: string;
  strategy: 'AllAtOnce' | 'Canary';
  /** "10, 50, 100" */
  canarySteps: string;
  /** the Canary steps that wait for approval, "2, 3" (1-based) */
  approvalSteps: string;
  /** the rollout policy as JSON: rate, abortCriteria, retries, deviceTimeout, schedule, maintenance */
  policy: string;
}

/** The spec.rollout fields the form edits as JSON (docs/crds.md, "Rollout policy"). */
export const policyKeys = ['rate', 'abortCriteria', 'retries', 'deviceTimeout', 'schedule', 'maintenance'] as const;

/** policyText is the JSON the form shows for a rollout's policy, "" without one. */
export function policyText(r: RolloutSpec | undefined): string {
  const p: Record<string, unknown> = {};
  for (const k of policyKeys) if (r?.[k] !== undefined) p[k] = r[k];
  return Object.keys(p).length ? JSON.stringify(p, null, 2) : '';
}

/** parsePolicy reads the form's policy JSON; the apiserver checks the values. */
export function parsePolicy(text: string): { policy: Partial<RolloutSpec>; error?: string } {
  if (!text.trim()) return { policy: {} };
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return { policy: {}, error: `not JSON: ${(e as Error).message}` };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { policy: {}, error: 'write a JSON object, e.g. {"rate": {"devicesPerMinute": 10}}' };
  const unknown = Object.keys(v).filter((k) => !(policyKeys as readonly string[]).includes(k));
  if (unknown.length) return { policy: {}, error: `unknown field ${unknown.join(', ')}: use ${policyKeys.join(', ')}` };
  return { policy: v as Partial<RolloutSpec> };
}

/** parseApprovalSteps reads "2, 3": the 1-based steps, of n, that wait for approval. */
export function parseApprovalSteps(text: string, n: number): { steps: number[]; error?: string } {
  const steps = text.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (steps.some((x) => !Number.isInteger(x) || x < 1 || x > n)) return { steps: [], error: `step numbers from 1 to ${n}, e.g. 2` };
  return { steps };
}

export type FormErrors = Partial<Record<keyof AppForm, string>>;

const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const languages = ['c', 'assemblyscript', 'wat', 'rust'];
export const maxSourceBytes = 256 * 1024;
export const maxModuleBytes = 1000 * 1024;

/** parsePairs parses "k=v" items split by sep; it returns an error for a bad item. */
export function parsePairs(s: string, sep: RegExp): { pairs: Record<string, string>; error?: string } {
  const pairs: Record<string, string> = {};
  for (const raw of s.split(sep)) {
    const item = raw.trim();
    if (!item) continue;
    const i = item.indexOf('=');
    if (i <= 0) return { pairs, error: `"${item}" is not key=value` };
    pairs[item.slice(0, i).trim()] = item.slice(i + 1).trim();
  }
  return { pairs };
}

/** validateAppForm checks what the apiserver would refuse, before sending. */
export function validateAppForm(f: AppForm): FormErrors {
  const e: FormErrors = {};
  if (!f.name) e.name = 'a name is required';
  else if (f.name.length > 63 || !dnsLabel.test(f.name))
    e.name = 'lower-case letters, digits and "-", starting and ending with a letter or digit (at most 63)';
  if (f.mode === 'source') {
    if (!languages.includes(f.language)) e.language = `choose one of ${languages.join(', ')}`;
    if (!f.code.trim()) e.code = 'write the application, or pick a starter template';
    else if (new TextEncoder().encode(f.code).length > maxSourceBytes) e.code = 'the source exceeds 256 KiB';
  } else if (!f.wasm) {
    e.wasm = 'choose a .wasm file';
  } else if (f.wasm.size > maxModuleBytes) {
    e.wasm = `the module has ${f.wasm.size} bytes; at most ${maxModuleBytes} fit in a ConfigMap`;
  } else if (!(f.wasm.head[0] === 0 && f.wasm.head[1] === 0x61 && f.wasm.head[2] === 0x73 && f.wasm.head[3] === 0x6d)) {
    e.wasm = 'not a WebAssembly binary (it must start with \\0asm); for .wat text use the source editor';
  }
  const sel = parsePairs(f.selector, /,/);
  if (sel.error) e.selector = `${sel.error}: write labels as key=value, separated by commas`;
  const cfg = parsePairs(f.config, /\n/);
  if (cfg.error) e.config = `${cfg.error}: one key=value per line`;
  else {
    const keys = Object.keys(cfg.pairs);
    if (keys.length > 32) e.config = 'at most 32 keys';
    else if (keys.some((k) => k.length > 64)) e.config = 'a key is longer than 64 bytes';
    else if (Object.values(cfg.pairs).some((v) => v.length > 256)) e.config = 'a value is longer than 256 bytes';
  }
  if (f.strategy === 'Canary') {
    const steps = f.canarySteps.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
    if (steps.length === 0) e.canarySteps = 'a canary rollout needs at least one step, e.g. 10, 50, 100';
    else if (steps.some((p) => !Number.isInteger(p) || p < 1 || p > 100)) e.canarySteps = 'each step is a percentage from 1 to 100';
    else if (steps.some((p, i) => i > 0 && p <= steps[i - 1])) e.canarySteps = 'the percentages must increase';
    const approvals = parseApprovalSteps(f.approvalSteps, steps.length);
    if (approvals.error) e.approvalSteps = approvals.error;
  }
  const policy = parsePolicy(f.policy);
  if (policy.error) e.policy = policy.error;
  return e;
}

/** countBy counts devices by a key. */
export function countBy(devices: Device[], key: (d: Device) => string): [string, number][] {
  const m = new Map<string, number>();
  for (const d of devices) m.set(key(d), (m.get(key(d)) ?? 0) + 1);
  return [...m.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

/** age formats the time since t: "42s", "5m", "3h", "2d". */
export function age(t: string | undefined, now = Date.now()): string {
  if (!t) return '—';
  const s = Math.max(0, Math.round((now - Date.parse(t)) / 1000));
  if (s < 90) return `${s}s`;
  if (s < 90 * 60) return `${Math.round(s / 60)}m`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

export function bytes(n: number | undefined): string {
  if (n === undefined) return '—';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function shortDigest(d: string | undefined): string {
  return d ? d.replace(/^sha256:/, '').slice(0, 12) : '—';
}
