import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { upsert } from '../store';
import type { Application } from '../types';
import { AppDetail } from './AppDetail';
import { withQueries } from '../testing';

/** When a fixture's condition last changed. */
const T0 = '2026-12-01T00:00:00Z';

afterEach(() => {
  cleanup();
  vi.restoreAllMocks();
});

const waitingApp: Application = {
  metadata: { name: 'gated', namespace: 'default', generation: 2, resourceVersion: '10' },
  spec: {
    source: { inline: { language: 'c', code: 'int x;' } },
    selector: {},
    rollout: {
      strategy: 'Canary',
      steps: [{ percent: 20 }, { percent: 100, requireApproval: true }],
      rate: { devicesPerMinute: 30 },
      maintenance: { timeZone: 'Europe/Berlin', windows: [{ start: '22:00', duration: '4h' }] },
    },
  },
  status: {
    phase: 'Paused',
    build: { digest: 'sha256:' + 'a'.repeat(64), size: 100 },
    conditions: [{ type: 'RolledOut', status: 'Unknown', reason: 'WaitingForApproval', message: 'waiting for approval of step 2 of 2', observedGeneration: 2, lastTransitionTime: T0 }],
    rollout: {
      digest: 'sha256:' + 'a'.repeat(64), step: 1, steps: 2, targeted: 10, dispatched: 2, succeeded: 2, failed: 0, progress: '2/10',
      waitingFor: 'waiting for approval of step 2 of 2: annotate the Application wasmbed.dev/approve-step=2, or approve it in the console',
      retries: 1, rate: { devicesPerMinute: 30 }, failuresByType: { timeout: 1 },
      devices: [{ name: 'sim-3', startedAt: '2026-12-07T21:00:00Z', attempts: 2, failure: 'timeout', final: true }],
    },
  },
};

describe('AppDetail', () => {
  it('shows what the rollout waits for and approves the waiting step', async () => {
    upsert('Application', 'ADDED', waitingApp);
    const fetchSpy = vi.spyOn(globalThis, 'fetch').mockImplementation(async () => new Response(JSON.stringify({ items: [] }), { status: 200 }));
    render(withQueries(<AppDetail namespace="default" name="gated" />));
    expect(screen.getByTestId('rollout-waiting').textContent).toContain('waiting for approval of step 2 of 2');
    expect(screen.getByTestId('rollout-policy').textContent).toContain('30 devices/min');
    expect(screen.getByTestId('rollout-policy').textContent).toContain('maintenance windows (Europe/Berlin): daily 22:00 for 4h');
    expect(screen.getByTestId('rollout-counts').textContent).toContain('1 retries');
    expect(screen.getByTestId('rollout-devices').textContent).toContain('failed for good');
    fireEvent.click(screen.getByTestId('approve'));
    fireEvent.click(screen.getByTestId('confirm'));
    await waitFor(() =>
      expect(fetchSpy.mock.calls.some(([url, init]) => String(url).endsWith('/applications/gated/rollout/approve?step=2') && init?.method === 'POST')).toBe(true),
    );
  });
});
