import { cleanup, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiError } from '../api';
import { ErrorAlert, StatusChip } from './common';

/** When a fixture's condition last changed. */
const T0 = '2026-12-01T00:00:00Z';

afterEach(cleanup);

describe('StatusChip', () => {
  it('shows the Ready status derived from the conditions', () => {
    render(<StatusChip conditions={[{ type: 'Ready', status: 'False', reason: 'ModuleRejected', message: 'needs 2 pages', lastTransitionTime: T0 }]} />);
    const chip = screen.getByTestId('status-chip');
    expect(chip.textContent).toBe('Module rejected');
    expect(chip.className).toMatch(/colorError/);
  });
  it('is green when Ready', () => {
    render(<StatusChip conditions={[{ type: 'Ready', status: 'True', observedGeneration: 3, reason: '', message: '', lastTransitionTime: T0 }]} generation={3} />);
    expect(screen.getByTestId('status-chip').className).toMatch(/colorSuccess/);
  });
});

describe('ErrorAlert', () => {
  it("shows the apiserver's message and what to do", () => {
    render(<ErrorAlert error={new ApiError(403, 'forbidden', 'User "bob" cannot create resource "applications"')} />);
    const a = screen.getByTestId('error-alert');
    expect(a.textContent).toContain('User "bob" cannot create');
    expect(a.textContent).toContain('ask an administrator');
  });
});
