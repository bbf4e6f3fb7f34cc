import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { templates } from '../templates';
import { AppForm } from './AppForm';

afterEach(() => {
  cleanup();
  vi.restoreAllMocks();
});

describe('AppForm', () => {
  it('starts from the C template and refuses a bad name without calling the API', () => {
    const fetchSpy = vi.spyOn(globalThis, 'fetch');
    render(<AppForm />);
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
    render(<AppForm />);
    fireEvent.change(screen.getByTestId('app-name'), { target: { value: 'x' } });
    fireEvent.click(screen.getByTestId('submit-app'));
    expect(await screen.findByText('spec.config')).toBeTruthy();
    expect(screen.getByTestId('error-alert').textContent).toContain('fix the field it names');
  });
});
