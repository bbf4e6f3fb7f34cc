import { Box, Chip, LinearProgress, Table, TableBody, TableCell, TableHead, TableRow, Typography } from '@mui/material';
import { objPath } from '../api';
import { EmptyState, ErrorAlert, EventsTable, Field, NavLink, PhaseChip, Section, StatusChip } from '../components/common';
import { useFetch } from '../hooks';
import { age, bytes, shortDigest } from '../logic';
import { useStore } from '../store';
import type { Device, DeviceLog, KubeEvent } from '../types';

function decodePayload(p: unknown): string {
  if (typeof p !== 'string') return JSON.stringify(p);
  try {
    const raw = atob(p);
    return /^[\x20-\x7e\s]*$/.test(raw) ? raw : [...raw].map((c) => c.charCodeAt(0).toString(16).padStart(2, '0')).join(' ');
  } catch {
    return p;
  }
}

export function DeviceDetail({ namespace, name }: { namespace: string; name: string }) {
  const fromStore = useStore((s) => s.devices[`${namespace}/${name}`]);
  const fetched = useFetch<Device>(fromStore ? null : objPath('devices', namespace, name));
  const d = fromStore ?? fetched.data;
  const log = useFetch<DeviceLog>(objPath('devices', namespace, name) + '/log', 3000);
  const events = useFetch<{ items: KubeEvent[] }>(objPath('devices', namespace, name) + '/events', 10000, d?.metadata.resourceVersion);
  const telemetry = useStore((s) => s.cloudEvents).filter(
    (e) => e.type === 'dev.wasmbed.device.telemetry' && e.subject === `${namespace}/${name}`,
  );
  if (!d) {
    if (fetched.loading) return <LinearProgress />;
    return <ErrorAlert error={fetched.error} title={`Device ${namespace}/${name}`} />;
  }
  const st = d.status ?? {};
  const cert = st.certificateNotAfter;
  const certDays = cert ? Math.round((Date.parse(cert) - Date.now()) / 86400000) : undefined;
  return (
    <Box>
      <Box sx={{ display: 'flex', alignItems: 'center', gap: 1, mb: 2 }}>
        <Typography variant="h5" data-testid="device-title">
          Device {namespace}/{name}
        </Typography>
        <PhaseChip phase={st.phase} />
        <StatusChip conditions={st.conditions} />
        {d.spec.disabled && <Chip color="error" size="small" label="disabled" />}
      </Box>
      <Box sx={{ display: 'grid', gridTemplateColumns: { md: '1fr 1fr', xs: '1fr' }, gap: 2 }}>
        <Section title="Device">
          <Field label="Board">{d.spec.board}</Field>
          <Field label="Phase">{st.phase ?? 'Pending'}</Field>
          <Field label="Gateway">{st.gateway ?? (d.spec.gateway ? `${d.spec.gateway} (preferred)` : '—')}</Field>
          <Field label="Last seen">{st.lastSeen ? `${age(st.lastSeen)} ago (${new Date(st.lastSeen).toLocaleString()})` : 'never'}</Field>
          <Field label="Firmware">{st.firmwareVersion ?? '—'}</Field>
          <Field label="Certificate expires">
            {cert ? (
              <span>
                {new Date(cert).toLocaleString()}{' '}
                <Chip size="small" color={certDays! < 7 ? 'warning' : 'default'} label={certDays! < 0 ? 'expired' : `in ${certDays} days`} />
              </span>
            ) : (
              'no certificate issued yet'
            )}
          </Field>
        </Section>
        <Section title="Capabilities">
          {st.capabilities ? (
            <>
              <Field label="RAM">{bytes(st.capabilities.ramBytes)}</Field>
              <Field label="Flash">{bytes(st.capabilities.flashBytes)}</Field>
              <Field label="Max module size">{bytes(st.capabilities.maxModuleBytes)}</Field>
              <Field label="ABI version">{st.capabilities.abiVersion ?? '—'}</Field>
            </>
          ) : (
            <Typography color="text.secondary">Reported by the device when it connects (its Hello).</Typography>
          )}
        </Section>
      </Box>
      <Section title="Applications on the device">
        {(st.applications ?? []).length === 0 ? (
          <Typography color="text.secondary">
            None. Applications whose selector matches this device's labels are deployed to it: <NavLink to="/applications/new">create one</NavLink>.
          </Typography>
        ) : (
          <Table size="small" data-testid="device-apps">
            <TableHead>
              <TableRow>
                <TableCell>Application</TableCell>
                <TableCell>State</TableCell>
                <TableCell>Digest</TableCell>
                <TableCell>Message</TableCell>
              </TableRow>
            </TableHead>
            <TableBody>
              {st.applications!.map((a) => (
                <TableRow key={a.name}>
                  <TableCell>
                    <NavLink to={`/applications/${namespace}/${a.name}`}>{a.name}</NavLink>
                  </TableCell>
                  <TableCell>
                    <PhaseChip phase={a.state} />
                  </TableCell>
                  <TableCell sx={{ fontFamily: 'monospace' }}>{shortDigest(a.digest)}</TableCell>
                  <TableCell>{a.message}</TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        )}
      </Section>
      <Section title={`Console log${log.data?.gateway ? ` (from gateway ${log.data.gateway})` : ''}`}>
        <ErrorAlert error={log.error} />
        {log.data?.note && <Typography color="text.secondary">{log.data.note}</Typography>}
        {(log.data?.lines.length ?? 0) > 0 && (
          <Box component="pre" data-testid="device-log" sx={{ bgcolor: '#111', color: '#ddd', p: 1.5, m: 0, maxHeight: 320, overflow: 'auto', fontSize: 12, borderRadius: 1 }}>
            {log.data!.lines.map((l) => `${new Date(l.time).toLocaleTimeString()} ${l.level.padEnd(5)} ${l.app ? `[${l.app}] ` : ''}${l.message}`).join('\n')}
          </Box>
        )}
      </Section>
      <Section title="Telemetry (live)">
        {telemetry.length === 0 ? (
          <Typography color="text.secondary">Records the device's applications publish appear here live (dev.wasmbed.device.telemetry).</Typography>
        ) : (
          <Table size="small">
            <TableHead>
              <TableRow>
                <TableCell>Age</TableCell>
                <TableCell>Application</TableCell>
                <TableCell>Topic</TableCell>
                <TableCell>Payload</TableCell>
              </TableRow>
            </TableHead>
            <TableBody>
              {telemetry.slice(0, 30).map((e) => {
                const data = (e.data ?? {}) as { application?: string; topic?: string; payload?: unknown };
                return (
                  <TableRow key={e.id}>
                    <TableCell>{age(e.time)}</TableCell>
                    <TableCell>{data.application}</TableCell>
                    <TableCell>{data.topic}</TableCell>
                    <TableCell sx={{ fontFamily: 'monospace' }}>{decodePayload(data.payload)}</TableCell>
                  </TableRow>
                );
              })}
            </TableBody>
          </Table>
        )}
      </Section>
      <Section title="Events">
        <ErrorAlert error={events.error} />
        <EventsTable events={events.data?.items ?? []} />
      </Section>
    </Box>
  );
}

export function NotFound() {
  return <EmptyState title="Nothing here">This page does not exist: use the navigation above.</EmptyState>;
}
