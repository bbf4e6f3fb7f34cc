import {
  Alert, Box, Button, Dialog, DialogActions, DialogContent, DialogContentText, DialogTitle, LinearProgress, Step, StepLabel, Stepper,
  Table, TableBody, TableCell, TableHead, TableRow, Typography,
} from '@mui/material';
import { useState } from 'react';
import { api, objPath } from '../api';
import { ConditionsTable, ErrorAlert, EventsTable, Field, NavLink, PhaseChip, Section, StatusChip } from '../components/common';
import { useFetch } from '../hooks';
import { bytes, policySummary, rolloutProgress, rolloutWaiting, shortDigest } from '../logic';
import { remove, upsert, useStore } from '../store';
import type { Application, KubeEvent } from '../types';
import { AppForm } from './AppForm';
import { ProgressCell, sourceLabel } from './Applications';

type Action = 'pause' | 'resume' | 'abort' | 'rollback' | 'approve' | 'delete';

const confirmText: Record<Action, string> = {
  pause: 'Hold the rollout: devices that have the new module keep it; no more devices get it until you resume.',
  resume: 'Continue the rollout from where it stopped.',
  abort: 'Stop the rollout where it is. Devices that got the new module keep it (no rollback).',
  rollback: 'Stop the rollout and put the previous good module back on the devices that got the new one.',
  approve: 'Let the waiting step start: its devices get the new module, within the rollout policy (rate, maintenance windows).',
  delete: 'Delete the application: it is removed from every device. This cannot be undone.',
};

export function AppDetail({ namespace, name, edit }: { namespace: string; name: string; edit?: boolean }) {
  const fromStore = useStore((s) => s.applications[`${namespace}/${name}`]);
  const fetched = useFetch<Application>(fromStore ? null : objPath('applications', namespace, name));
  const a = fromStore ?? fetched.data;
  const devices = Object.values(useStore((s) => s.devices)).filter((d) => d.metadata.namespace === namespace);
  const events = useFetch<{ items: KubeEvent[] }>(objPath('applications', namespace, name) + '/events', 10000, a?.status?.phase);
  const [pending, setPending] = useState<Action>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  if (!a) {
    if (fetched.loading) return <LinearProgress />;
    return <ErrorAlert error={fetched.error} title={`Application ${namespace}/${name}`} />;
  }
  if (edit) return <AppForm existing={a} />;
  const st = a.status ?? {};
  const p = rolloutProgress(a);
  const waiting = rolloutWaiting(a);
  const policy = policySummary(a.spec.rollout);
  const run = async (act: Action) => {
    setBusy(true);
    setError(undefined);
    try {
      if (act === 'delete') {
        await api('DELETE', objPath('applications', namespace, name));
        remove('Application', namespace, name);
        location.hash = '#/applications';
      } else {
        const query = act === 'approve' ? `?step=${waiting?.approveStep ?? 0}` : '';
        upsert('Application', 'MODIFIED', await api<Application>('POST', objPath('applications', namespace, name) + `/rollout/${act}${query}`));
      }
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
      setPending(undefined);
    }
  };
  const r = a.spec.rollout ?? {};
  const onDevices = devices
    .map((d) => ({ d, app: d.status?.applications?.find((x) => x.name === name) }))
    .filter((x) => x.app);
  const failedStage = st.phase === 'Failed';
  return (
    <Box>
      <Box sx={{ display: 'flex', alignItems: 'center', gap: 1, mb: 2, flexWrap: 'wrap' }}>
        <Typography variant="h5" sx={{ mr: 1 }} data-testid="app-title">
          Application {namespace}/{name}
        </Typography>
        <PhaseChip phase={st.phase} />
        <StatusChip conditions={st.conditions} generation={a.metadata.generation} />
        <Box sx={{ flex: 1 }} />
        <Button size="small" variant="outlined" href={`#/applications/${namespace}/${name}/edit`}>
          Edit
        </Button>
        {r.paused ? (
          <Button size="small" variant="outlined" onClick={() => setPending('resume')} data-testid="resume">
            Resume
          </Button>
        ) : (
          <Button size="small" variant="outlined" onClick={() => setPending('pause')} disabled={r.abort} data-testid="pause">
            Pause
          </Button>
        )}
        {r.abort && (
          <Button size="small" variant="outlined" onClick={() => setPending('resume')}>
            Resume
          </Button>
        )}
        {waiting?.approveStep && (
          <Button size="small" variant="contained" onClick={() => setPending('approve')} data-testid="approve">
            Approve step {waiting.approveStep}
          </Button>
        )}
        <Button size="small" variant="outlined" color="warning" onClick={() => setPending('abort')} disabled={r.abort}>
          Abort
        </Button>
        <Button size="small" variant="outlined" color="warning" onClick={() => setPending('rollback')} disabled={!st.previousGoodDigest}
          title={st.previousGoodDigest ? '' : 'no previous good module to go back to'}>
          Rollback
        </Button>
        <Button size="small" variant="outlined" color="error" onClick={() => setPending('delete')} data-testid="delete">
          Delete
        </Button>
      </Box>
      {busy && <LinearProgress />}
      <ErrorAlert error={error} />
      {r.paused && <Alert severity="warning" sx={{ mb: 2 }}>The rollout is paused (spec.rollout.paused).</Alert>}
      {r.abort && <Alert severity="warning" sx={{ mb: 2 }}>The rollout was aborted{r.autoRollback === false ? '' : ' and rolled back'}: resume it, or edit the application to start a new one.</Alert>}
      <Section title="Pipeline">
        <Stepper activeStep={failedStage ? -1 : p.stage} alternativeLabel>
          {['Build', 'Validate', 'Roll out', 'Running'].map((s, i) => (
            <Step key={s} completed={p.stage > i || (i === 3 && p.done)}>
              <StepLabel error={failedStage && stageOfFailure(a) === i}>{s}</StepLabel>
            </Step>
          ))}
        </Stepper>
        <Box sx={{ mt: 2, maxWidth: 500 }}>
          <ProgressCell app={a} />
        </Box>
        {st.rollout && (
          <Typography variant="body2" sx={{ mt: 1 }} data-testid="rollout-counts">
            {st.rollout.targeted} targeted · {st.rollout.dispatched} dispatched · {st.rollout.succeeded} running · {st.rollout.failed} failed
            {p.step ? ` · ${p.step}` : ''}
            {st.rollout.rolledBack ? ' · rolled back' : ''}
            {st.rollout.pausedUntil ? ` · next step at ${new Date(st.rollout.pausedUntil).toLocaleTimeString()}` : ''}
            {st.rollout.retries ? ` · ${st.rollout.retries} retries` : ''}
            {st.rollout.rate ? ` · ${st.rollout.rate.devicesPerMinute} devices/min` : ''}
            {Object.entries(st.rollout.failuresByType ?? {}).map(([k, v]) => ` · ${v} ${k}`).join('')}
            {st.rollout.overdue ? ' · overdue' : ''}
          </Typography>
        )}
        {waiting && (
          <Alert severity={waiting.blocked ? 'error' : 'info'} sx={{ mt: 1 }} data-testid="rollout-waiting">
            {waiting.blocked ? 'This rollout can never finish: ' : ''}
            {waiting.message}
            {waiting.nextAt && !waiting.blocked ? ` (looks again at ${new Date(waiting.nextAt).toLocaleString()})` : ''}
          </Alert>
        )}
        {st.rollout?.firstFailure && <Alert severity="error" sx={{ mt: 1 }}>First failure: {st.rollout.firstFailure}</Alert>}
        {(st.rollout?.devices?.length ?? 0) > 0 && (
          <Table size="small" sx={{ mt: 1 }} data-testid="rollout-devices">
            <TableHead>
              <TableRow>
                <TableCell>Started, not running yet</TableCell>
                <TableCell>Attempts</TableCell>
                <TableCell>Failure</TableCell>
                <TableCell>Next</TableCell>
              </TableRow>
            </TableHead>
            <TableBody>
              {st.rollout!.devices!.map((x) => (
                <TableRow key={x.name}>
                  <TableCell>
                    <NavLink to={`/devices/${namespace}/${x.name}`}>{x.name}</NavLink>
                  </TableCell>
                  <TableCell>{x.attempts}</TableCell>
                  <TableCell title={x.message}>{x.failure ?? 'in flight'}</TableCell>
                  <TableCell>{x.final ? 'failed for good' : x.retryAt ? `retry at ${new Date(x.retryAt).toLocaleTimeString()}` : `since ${new Date(x.startedAt).toLocaleTimeString()}`}</TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        )}
      </Section>
      <Box sx={{ display: 'grid', gridTemplateColumns: { md: '1fr 1fr', xs: '1fr' }, gap: 2 }}>
        <Section title="Module">
          <Field label="Source">{sourceLabel(a)}</Field>
          <Field label="Digest">
            <code>{st.build?.digest ?? '—'}</code>
          </Field>
          <Field label="Size">{bytes(st.build?.size)}</Field>
          <Field label="Toolchain">{st.build?.toolchain ?? '—'}</Field>
          <Field label="Previous good">
            <code>{shortDigest(st.previousGoodDigest)}</code>
          </Field>
          <Field label="Selector">
            {Object.entries(a.spec.selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`).join(', ') || 'every device of the namespace'}
          </Field>
          <Field label="Rollout">
            {r.strategy ?? 'AllAtOnce'}
            {r.steps?.length ? ` (${r.steps.map((s) => s.percent + '%' + (s.requireApproval ? ' after approval' : '')).join(' → ')})` : ''}
          </Field>
          {policy.length > 0 && (
            <Field label="Policy">
              <Box component="ul" sx={{ m: 0, pl: 2 }} data-testid="rollout-policy">
                {policy.map((x) => (
                  <li key={x}>{x}</li>
                ))}
              </Box>
            </Field>
          )}
        </Section>
        <Section title="Validation per board">
          {!st.validation ? (
            <Typography color="text.secondary">Not validated yet: the module is checked against every target board's memory budget after the build.</Typography>
          ) : (
            <>
              {(st.validation.reasons ?? []).map((x) => (
                <Alert key={x} severity="error" sx={{ mb: 1 }}>
                  {x}
                </Alert>
              ))}
              <Table size="small" data-testid="validation">
                <TableHead>
                  <TableRow>
                    <TableCell>Board</TableCell>
                    <TableCell>Fits</TableCell>
                    <TableCell>Memory</TableCell>
                    <TableCell>Message</TableCell>
                  </TableRow>
                </TableHead>
                <TableBody>
                  {(st.validation.boards ?? []).map((b) => (
                    <TableRow key={b.board}>
                      <TableCell>{b.board}</TableCell>
                      <TableCell>{b.fits ? '✓' : '✗'}</TableCell>
                      <TableCell>{bytes(b.memoryBytes)}</TableCell>
                      <TableCell>{b.message}</TableCell>
                    </TableRow>
                  ))}
                </TableBody>
              </Table>
            </>
          )}
        </Section>
      </Box>
      <Section title="Build log (tail)">
        {st.build?.logTail ? (
          <Box component="pre" sx={{ bgcolor: '#111', color: '#ddd', p: 1.5, m: 0, maxHeight: 300, overflow: 'auto', fontSize: 12, borderRadius: 1 }}>
            {st.build.logTail}
          </Box>
        ) : (
          <Typography color="text.secondary">{a.spec.source.inline ? 'No build output (yet).' : 'Prebuilt module: no build.'}</Typography>
        )}
      </Section>
      <Section title={`Devices (${onDevices.length})`}>
        {onDevices.length === 0 ? (
          <Typography color="text.secondary">No device has this application yet. Devices appear here as the rollout reaches them.</Typography>
        ) : (
          <Table size="small" data-testid="app-devices">
            <TableHead>
              <TableRow>
                <TableCell>Device</TableCell>
                <TableCell>State</TableCell>
                <TableCell>Module</TableCell>
                <TableCell>Failure</TableCell>
                <TableCell>Message</TableCell>
              </TableRow>
            </TableHead>
            <TableBody>
              {onDevices.map(({ d, app }) => (
                <TableRow key={d.metadata.name}>
                  <TableCell>
                    <NavLink to={`/devices/${namespace}/${d.metadata.name}`}>{d.metadata.name}</NavLink>
                  </TableCell>
                  <TableCell>
                    <PhaseChip phase={app!.state} />
                  </TableCell>
                  <TableCell sx={{ fontFamily: 'monospace' }}>
                    {shortDigest(app!.digest)} {app!.digest && app!.digest === st.build?.digest ? '(current)' : app!.digest ? '(other)' : ''}
                  </TableCell>
                  <TableCell>{app!.failure ?? (st.rollout?.devices?.find((x) => x.name === d.metadata.name)?.failure || '')}</TableCell>
                  <TableCell>{app!.message}</TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        )}
      </Section>
      <Section title="Conditions">
        <ConditionsTable conditions={st.conditions} />
      </Section>
      <Section title="Events">
        <ErrorAlert error={events.error} />
        <EventsTable events={events.data?.items ?? []} />
      </Section>
      <Dialog open={!!pending} onClose={() => setPending(undefined)}>
        <DialogTitle>{pending && pending[0].toUpperCase() + pending.slice(1)} {name}?</DialogTitle>
        <DialogContent>
          <DialogContentText>{pending && confirmText[pending]}</DialogContentText>
        </DialogContent>
        <DialogActions>
          <Button onClick={() => setPending(undefined)}>Cancel</Button>
          <Button onClick={() => pending && void run(pending)} color={pending === 'delete' ? 'error' : 'primary'} variant="contained" data-testid="confirm">
            {pending}
          </Button>
        </DialogActions>
      </Dialog>
    </Box>
  );
}

/** stageOfFailure is the pipeline stage a Failed application stopped at. */
function stageOfFailure(a: Application): number {
  const c = a.status?.conditions ?? [];
  const f = (t: string) => c.find((x) => x.type === t)?.status === 'False';
  if (f('Built')) return 0;
  if (f('Validated')) return 1;
  return 2;
}
