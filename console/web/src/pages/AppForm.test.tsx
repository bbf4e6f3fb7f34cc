import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { templates } from '../templates';
import type { Application } from '../types';
import { AppForm } from './AppForm';
import { withQueries } from '../testing';

afterEach(() => {
  cleanup();
  vi.restoreAllMocks();
});

describe('AppForm', () => {
  it('starts from the C template and refuses a bad name without calling the API', () => {
    const fetchSpy = vi.spyOn(globalThis, 'fetch');
    render(withQueries(<AppForm />));
    expect((screen.getByTestId('code') as HTMLTextAreaElement).value).toBe(templates.c);
    fireEvent.change(screen.getByTestId('app-name'), { target: { value: 'Not_Valid' } });
    fireEvent.click(screen.getByTestId('submit-app'));
    expect(screen.getByText(/lower-case letters/)).toBeTruthy();
    expect(fetchSpy).not.toHaveBeenCalled();
  });
  it("shows the apiserver's refusal naming the field", async () => {
    vi.spyOn(globalThis, 'fetch').mockResolvedValue(
      new Response(JSON.stringify({ error: 'invalid', detail: 'Application.wasmbed.dev "x" is invalid: spec.config: Too many', causes: [{ field: 'spec.config', message: 'Too many' }] }), { status: 422 }),
    );
    render(withQueries(<AppForm />));
    fireEvent.change(screen.getByTestId('app-name'), { target: { value: 'x' } });
    fireEvent.click(screen.getByTestId('submit-app'));
    expect(await screen.findByText('spec.config')).toBeTruthy();
    expect(screen.getByTestId('error-alert').textContent).toContain('fix the field it names');
  });
  it('edits the rollout policy and approvals, keeping what it does not show', async () => {
    const existing: Application = {
      metadata: { name: 'fleet', namespace: 'default', generation: 1 },
      spec: {
        source: { inline: { language: 'c', code: 'int x;' } },
        selector: {},
        rollout: { strategy: 'Canary', paused: true, steps: [{ percent: 10, pause: '1m' }, { percent: 100, requireApproval: true }], deviceTimeout: '5m' },
      },
    };
    const fetchSpy = vi.spyOn(globalThis, 'fetch').mockResolvedValue(new Response(JSON.stringify(existing), { status: 200 }));
    render(withQueries(<AppForm existing={existing} />));
    expect((screen.getByTestId('approval-steps') as HTMLInputElement).value).toBe('2');
    expect(JSON.parse((screen.getByTestId('rollout-policy-json') as HTMLTextAreaElement).value)).toEqual({ deviceTimeout: '5m' });
    fireEvent.change(screen.getByTestId('approval-steps'), { target: { value: '1' } });
    fireEvent.change(screen.getByTestId('rollout-policy-json'), { target: { value: '{"rate": {"devicesPerMinute": 30}}' } });
    fireEvent.click(screen.getByTestId('submit-app'));
    await waitFor(() => expect(fetchSpy).toHaveBeenCalled());
    const [url, init] = fetchSpy.mock.calls[0];
    expect(String(url)).toContain('/applications/fleet');
    expect(JSON.parse(String(init?.body)).rollout).toEqual({
      strategy: 'Canary', paused: true, rate: { devicesPerMinute: 30 },
      steps: [{ percent: 10, pause: '1m', requireApproval: true }, { percent: 100 }],
    });
  });
});
