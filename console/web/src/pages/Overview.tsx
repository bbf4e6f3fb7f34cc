import { Box, Chip, Paper, Table, TableBody, TableCell, TableHead, TableRow, Typography } from '@mui/material';
import { EmptyState, ErrorAlert, EventsTable, NavLink, PhaseChip, Section, StatusChip } from '../components/common';
import { useFetch } from '../hooks';
import { age, countBy, phaseTone } from '../logic';
import { useStore } from '../store';
import type { KubeEvent } from '../types';

function Stat({ label, value, to }: { label: string; value: number | string; to: string }) {
  return (
    <Paper variant="outlined" sx={{ p: 2 }}>
      <Typography color="text.secondary">{label}</Typography>
      <Typography variant="h4">
        <NavLink to={to}>{value}</NavLink>
      </Typography>
    </Paper>
  );
}

export function Overview() {
  const devices = Object.values(useStore((s) => s.devices));
  const apps = Object.values(useStore((s) => s.applications));
  const gateways = Object.values(useStore((s) => s.gateways));
  const errors = useStore((s) => s.errors);
  const loaded = useStore((s) => s.loaded);
  const ns = useStore((s) => s.namespace);
  const cloudEvents = useStore((s) => s.cloudEvents);
  const bump = useStore((s) => s.cloudEvents.length > 0 ? s.cloudEvents[0].id : '');
  const events = useFetch<{ items: KubeEvent[] }>(`/api/v1/events${ns ? `?namespace=${encodeURIComponent(ns)}` : ''}`, 10000, bump);
  const connected = devices.filter((d) => d.status?.phase === 'Connected').length;
  return (
    <Box>
      <Box sx={{ display: 'grid', gridTemplateColumns: 'repeat(auto-fit, minmax(180px, 1fr))', gap: 2, mb: 2 }}>
        <Stat label="Devices" value={devices.length} to="/devices" />
        <Stat label="Connected" value={connected} to="/devices" />
        <Stat label="Applications" value={apps.length} to="/applications" />
        <Stat label="Running apps" value={apps.filter((a) => a.status?.phase === 'Running').length} to="/applications" />
        <Stat label="Gateways" value={gateways.length} to="/gateways" />
      </Box>
      <ErrorAlert error={errors.Device} title="Devices" />
      {loaded.Device && !errors.Device && devices.length === 0 ? (
        <EmptyState title="No devices yet">
          Run <code>make run</code> (it starts virtual devices sim-0…sim-4 in namespace <code>default</code>), or create a Device:{' '}
          <code>kubectl apply -f</code> a <code>wasmbed.dev/v1alpha1</code> Device with a <code>spec.board</code>.
        </EmptyState>
      ) : (
        <Box sx={{ display: 'grid', gridTemplateColumns: { md: '1fr 1fr', xs: '1fr' }, gap: 2 }}>
          <Section title="Devices by phase">
            <Box sx={{ display: 'flex', gap: 1, flexWrap: 'wrap' }} data-testid="by-phase">
              {countBy(devices, (d) => d.status?.phase || 'Pending').map(([p, n]) => (
                <Chip key={p} label={`${p}: ${n}`} color={phaseTone(p) === 'default' ? 'default' : phaseTone(p) as 'success'} />
              ))}
            </Box>
          </Section>
          <Section title="Devices by board">
            <Box sx={{ display: 'flex', gap: 1, flexWrap: 'wrap' }}>
              {countBy(devices, (d) => d.spec.board).map(([b, n]) => (
                <Chip key={b} variant="outlined" label={`${b}: ${n}`} />
              ))}
            </Box>
          </Section>
        </Box>
      )}
      <Section title="Gateways">
        <ErrorAlert error={errors.Gateway} />
        {gateways.length === 0 ? (
          <Typography color="text.secondary">No gateways: `make run` creates wasmbed-system/gateway; in a cluster, create a Gateway object.</Typography>
        ) : (
          <Table size="small">
            <TableBody>
              {gateways.map((g) => (
                <TableRow key={g.metadata.uid ?? g.metadata.name}>
                  <TableCell>
                    {g.metadata.namespace}/{g.metadata.name}
                  </TableCell>
                  <TableCell>{g.status?.endpoint ?? '—'}</TableCell>
                  <TableCell>{g.status?.connectedDevices ?? 0} devices</TableCell>
                  <TableCell>
                    <StatusChip conditions={g.status?.conditions} generation={g.metadata.generation} />
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        )}
      </Section>
      <Section title="Applications">
        {apps.length === 0 ? (
          <Typography color="text.secondary">
            No applications: <NavLink to="/applications/new">create one</NavLink>.
          </Typography>
        ) : (
          <Box sx={{ display: 'flex', gap: 1, flexWrap: 'wrap' }}>
            {apps.map((a) => (
              <Box key={a.metadata.uid} sx={{ display: 'flex', gap: 0.5, alignItems: 'center' }}>
                <NavLink to={`/applications/${a.metadata.namespace}/${a.metadata.name}`}>{a.metadata.name}</NavLink>
                <PhaseChip phase={a.status?.phase} />
              </Box>
            ))}
          </Box>
        )}
      </Section>
      <Box sx={{ display: 'grid', gridTemplateColumns: { lg: '3fr 2fr', xs: '1fr' }, gap: 2 }}>
        <Section title="Recent Kubernetes Events">
          <ErrorAlert error={events.error} />
          <EventsTable events={events.data?.items ?? []} showObject />
        </Section>
        <Section title="Live platform events">
          {cloudEvents.length === 0 ? (
            <Typography color="text.secondary">
              CloudEvents (device connections, deployments, telemetry) appear here as the broker delivers them to the console.
            </Typography>
          ) : (
            <Table size="small">
              <TableHead>
                <TableRow>
                  <TableCell>Age</TableCell>
                  <TableCell>Type</TableCell>
                  <TableCell>Subject</TableCell>
                </TableRow>
              </TableHead>
              <TableBody>
                {cloudEvents.slice(0, 20).map((e) => (
                  <TableRow key={e.id}>
                    <TableCell>{age(e.time)}</TableCell>
                    <TableCell>{e.type.replace('dev.wasmbed.', '')}</TableCell>
                    <TableCell>{e.subject}</TableCell>
                  </TableRow>
                ))}
              </TableBody>
            </Table>
          )}
        </Section>
      </Box>
    </Box>
  );
}
