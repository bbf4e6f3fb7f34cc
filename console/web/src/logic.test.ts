import { describe, expect, it } from 'vitest';
import type { AppForm } from './logic';
import { parseApprovalSteps, parsePolicy, policySummary, policyText, rolloutProgress, rolloutWaiting, statusFromConditions, validateAppForm, words } from './logic';
import { parseSSE } from './stream';
import type { Application } from './types';

/** When a fixture's condition last changed. */
const T0 = '2026-12-01T00:00:00Z';

describe('statusFromConditions', () => {
  it('is Ready and green when Ready is True for the current generation', () => {
    expect(statusFromConditions([{ type: 'Ready', status: 'True', reason: 'RolloutSucceeded', observedGeneration: 2, message: '', lastTransitionTime: T0 }], 2)).toMatchObject({ label: 'Ready', tone: 'success' });
  });
  it('says Updating when the condition is about an older generation', () => {
    expect(statusFromConditions([{ type: 'Ready', status: 'True', observedGeneration: 1, reason: '', message: '', lastTransitionTime: T0 }], 2)).toMatchObject({ label: 'Updating', tone: 'info' });
  });
  it('shows work in progress, held and failed states differently', () => {
    expect(statusFromConditions([{ type: 'Ready', status: 'False', reason: 'Building', message: '', lastTransitionTime: T0 }])).toMatchObject({ label: 'Building', tone: 'info' });
    expect(statusFromConditions([{ type: 'Ready', status: 'False', reason: 'RolloutPaused', message: '', lastTransitionTime: T0 }])).toMatchObject({ label: 'Rollout paused', tone: 'warning' });
    const f = statusFromConditions([{ type: 'Ready', status: 'False', reason: 'BuildFailed', message: 'blink.c:3: error', lastTransitionTime: T0 }]);
    expect(f).toMatchObject({ label: 'Build failed', tone: 'error', message: 'blink.c:3: error' });
  });
  it('is Unknown without a Ready condition', () => {
    expect(statusFromConditions(undefined).label).toBe('Unknown');
    expect(statusFromConditions([{ type: 'Built', status: 'True', reason: '', message: '', lastTransitionTime: T0 }]).tone).toBe('default');
  });
  it('splits reasons into words', () => {
    expect(words('ModuleRejected')).toBe('Module rejected');
  });
});

const app = (status: Application['status']): Application => ({
  metadata: { name: 'a', namespace: 'default', generation: 1 },
  spec: { source: { inline: { language: 'c', code: '' } }, selector: {} },
  status,
});

describe('rolloutProgress', () => {
  it('is the share of targeted devices running the current module', () => {
    const p = rolloutProgress(app({
      phase: 'RollingOut', build: { digest: 'sha256:1', size: 1 },
      rollout: { digest: 'sha256:1', step: 1, steps: 3, targeted: 8, dispatched: 4, succeeded: 3, failed: 1, progress: '3/8' },
    }));
    expect(p).toMatchObject({ percent: 38, succeeded: 3, failed: 1, targeted: 8, step: 'step 2 of 3', stage: 2, done: false });
  });
  it('is 0 while a new build has not started rolling out', () => {
    const p = rolloutProgress(app({
      phase: 'Validating', build: { digest: 'sha256:new', size: 1 },
      rollout: { digest: 'sha256:old', step: 0, steps: 1, targeted: 5, dispatched: 5, succeeded: 5, failed: 0, progress: '5/5' },
    }));
    expect(p.percent).toBe(0);
    expect(p.stage).toBe(1);
    expect(p.step).toBe('');
  });
  it('is done when Running, and handles no targets', () => {
    expect(rolloutProgress(app({ phase: 'Running' }))).toMatchObject({ percent: 0, done: true, stage: 3 });
  });
});

const form = (f: Partial<AppForm>): AppForm => ({
  name: 'blink', mode: 'source', language: 'c', code: 'int x;', selector: '', config: '', strategy: 'AllAtOnce', canarySteps: '',
  approvalSteps: '', policy: '', ...f,
});

describe('validateAppForm', () => {
  it('accepts a complete form', () => {
    expect(validateAppForm(form({ selector: 'tier=canary, board=virtual', config: 'a=1\nb=2' }))).toEqual({});
  });
  it('names the field to fix', () => {
    expect(validateAppForm(form({ name: 'Blink_1' })).name).toMatch(/lower-case/);
    expect(validateAppForm(form({ name: '' })).name).toMatch(/required/);
    expect(validateAppForm(form({ code: '  ' })).code).toMatch(/template/);
    expect(validateAppForm(form({ language: 'cobol' })).language).toMatch(/c, assemblyscript, wat, rust/);
    expect(validateAppForm(form({ selector: 'tier' })).selector).toMatch(/key=value/);
    expect(validateAppForm(form({ config: 'ok=1\nbad' })).config).toMatch(/"bad"/);
    expect(validateAppForm(form({ strategy: 'Canary', canarySteps: '50, 10' })).canarySteps).toMatch(/increase/);
    expect(validateAppForm(form({ strategy: 'Canary', canarySteps: '' })).canarySteps).toMatch(/at least one/);
    expect(validateAppForm(form({ strategy: 'Canary', canarySteps: '10, 100', approvalSteps: '3' })).approvalSteps).toMatch(/from 1 to 2/);
    expect(validateAppForm(form({ policy: '{"rate": ' })).policy).toMatch(/not JSON/);
    expect(validateAppForm(form({ policy: '[1]' })).policy).toMatch(/JSON object/);
    expect(validateAppForm(form({ policy: '{"paused": true}' })).policy).toMatch(/unknown field paused/);
    expect(validateAppForm(form({ strategy: 'Canary', canarySteps: '10, 100', approvalSteps: '2', policy: '{"rate": {"devicesPerMinute": 5}}' }))).toEqual({});
  });
  it('shows and reads the rollout policy as JSON', () => {
    const r = { strategy: 'Canary' as const, paused: true, rate: { devicesPerMinute: 5 }, deviceTimeout: '1m' };
    const text = policyText(r);
    expect(JSON.parse(text)).toEqual({ rate: { devicesPerMinute: 5 }, deviceTimeout: '1m' });
    expect(parsePolicy(text).policy).toEqual({ rate: { devicesPerMinute: 5 }, deviceTimeout: '1m' });
    expect(policyText({ strategy: 'AllAtOnce' })).toBe('');
    expect(parseApprovalSteps('2, 3', 3)).toEqual({ steps: [2, 3] });
  });
  it('checks an uploaded module is WebAssembly', () => {
    expect(validateAppForm(form({ mode: 'upload' })).wasm).toMatch(/choose/);
    expect(validateAppForm(form({ mode: 'upload', wasm: { size: 8, head: new Uint8Array([0x7f, 0x45, 0x4c, 0x46]) } })).wasm).toMatch(/not a WebAssembly/);
    expect(validateAppForm(form({ mode: 'upload', wasm: { size: 2e6, head: new Uint8Array([0, 0x61, 0x73, 0x6d]) } })).wasm).toMatch(/ConfigMap/);
    expect(validateAppForm(form({ mode: 'upload', wasm: { size: 8, head: new Uint8Array([0, 0x61, 0x73, 0x6d]) } }))).toEqual({});
  });
});

describe('parseSSE', () => {
  it('splits complete messages and keeps the rest', () => {
    const { messages, rest } = parseSSE(': keepalive\n\nevent: ready\ndata: {}\n\nevent: change\ndata: {"a"');
    expect(messages).toEqual([{ event: 'ready', data: '{}' }]);
    expect(rest).toBe('event: change\ndata: {"a"');
  });
});

describe('policySummary', () => {
  it('describes every setting of the rollout policy', () => {
    const lines = policySummary({
      strategy: 'Canary',
      steps: [{ percent: 10 }, { percent: 100, requireApproval: true }],
      rate: { devicesPerMinute: 20, growth: { factor: '2', afterSucceeded: 50 } },
      abortCriteria: [{ failureType: 'trap', thresholdPercent: 5, minFinished: 20 }],
      retries: [{ failureType: 'transfer', attempts: 3, backoff: '1m' }],
      deviceTimeout: '15m',
      schedule: { endBy: '2026-12-20T06:00:00Z', endBehavior: 'Rollback' },
      maintenance: { timeZone: 'Europe/Berlin', windows: [{ days: ['Sat', 'Sun'], start: '00:00', duration: '24h' }] },
    });
    expect(lines[0]).toBe('approval before step 2');
    expect(lines[1]).toBe('20 devices/min, ×2 after every 50 succeeded (at most 1000/min)');
    expect(lines).toContain('abort at 5% trap failures after 20 finished');
    expect(lines).toContain('retry transfer failures 3× (backoff 1m, doubling)');
    expect(lines).toContain('a device must run within 15m');
    expect(lines.some((l) => l.startsWith('end by ') && l.endsWith('then rollback'))).toBe(true);
    expect(lines).toContain('maintenance windows (Europe/Berlin): Sat/Sun 00:00 for 24h');
  });
  it('is empty without a policy', () => {
    expect(policySummary({ strategy: 'AllAtOnce' })).toEqual([]);
    expect(policySummary(undefined)).toEqual([]);
  });
});

describe('rolloutWaiting', () => {
  const withRollout = (reason: string, message: string, rollout: Partial<NonNullable<NonNullable<Application['status']>['rollout']>>): Application =>
    ({
      metadata: { name: 'a', namespace: 'default', generation: 1 },
      spec: { source: {} },
      status: {
        conditions: [{ type: 'RolledOut', status: reason === 'CannotFinish' ? 'False' : 'Unknown', reason, message }],
        rollout: { digest: 'sha256:1', step: 0, steps: 2, targeted: 4, dispatched: 0, succeeded: 0, failed: 0, progress: '0/4', ...rollout },
      },
    }) as Application;
  it('offers to approve the step that waits', () => {
    const w = rolloutWaiting(withRollout('WaitingForApproval', 'm', { step: 1, waitingFor: 'waiting for approval of step 2 of 2' }));
    expect(w).toMatchObject({ approveStep: 2, message: 'waiting for approval of step 2 of 2', blocked: false });
  });
  it('says when a window opens, without an approval', () => {
    const w = rolloutWaiting(withRollout('OutsideMaintenanceWindow', 'm', { waitingFor: 'outside the maintenance windows', nextActionAt: '2026-12-07T21:00:00Z' }));
    expect(w).toMatchObject({ approveStep: undefined, nextAt: '2026-12-07T21:00:00Z', blocked: false });
  });
  it('reports a policy that can never finish', () => {
    expect(rolloutWaiting(withRollout('CannotFinish', 'endBy passed', {}))).toMatchObject({ blocked: true, message: 'endBy passed' });
  });
  it('is undefined while devices simply roll out', () => {
    expect(rolloutWaiting(withRollout('RollingOut', 'step 1 of 2', {}))).toBeUndefined();
  });
});
