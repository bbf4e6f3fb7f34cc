import { AppBar, Box, Button, Chip, Container, TextField, Toolbar, Tooltip, Typography } from '@mui/material';
import { useEffect, useState } from 'react';
import { getToken, onUnauthorized, setToken } from './api';
import { AppDetail } from './pages/AppDetail';
import { AppForm } from './pages/AppForm';
import { Applications } from './pages/Applications';
import { DeviceDetail, NotFound } from './pages/DeviceDetail';
import { Devices } from './pages/Devices';
import { Gateways } from './pages/Gateways';
import { Login } from './pages/Login';
import { Overview } from './pages/Overview';
import { live, setNamespace, useStore } from './store';

function useHash(): string {
  const [h, setH] = useState(location.hash.slice(1) || '/');
  useEffect(() => {
    const f = () => setH(location.hash.slice(1) || '/');
    window.addEventListener('hashchange', f);
    return () => window.removeEventListener('hashchange', f);
  }, []);
  return h;
}

function Page({ path }: { path: string }) {
  const p = path.split('/').filter(Boolean).map(decodeURIComponent);
  if (p.length === 0) return <Overview />;
  if (p[0] === 'devices' && p.length === 1) return <Devices />;
  if (p[0] === 'devices' && p.length === 3) return <DeviceDetail key={path} namespace={p[1]} name={p[2]} />;
  if (p[0] === 'applications' && p.length === 1) return <Applications />;
  if (p[0] === 'applications' && p[1] === 'new') return <AppForm />;
  if (p[0] === 'applications' && (p.length === 3 || (p.length === 4 && p[3] === 'edit')))
    return <AppDetail key={path} namespace={p[1]} name={p[2]} edit={p[3] === 'edit'} />;
  if (p[0] === 'gateways') return <Gateways />;
  return <NotFound />;
}

const streamLabel = { connecting: 'connecting', live: 'live', reconnecting: 'reconnecting…', refused: 'no live updates' };
const streamColor = { connecting: 'default', live: 'success', reconnecting: 'warning', refused: 'warning' } as const;

export function App() {
  const [token, setTok] = useState(getToken());
  const [user, setUser] = useState(sessionStorage.getItem('wasmbed.user') ?? '');
  const path = useHash();
  const ns = useStore((s) => s.namespace);
  const stream = useStore((s) => s.stream);
  const streamError = useStore((s) => s.streamError);
  const [nsInput, setNsInput] = useState(ns);
  useEffect(() => onUnauthorized(() => logout()), []);
  useEffect(() => {
    if (!token) return;
    const ac = new AbortController();
    void live(token, ac.signal);
    return () => ac.abort();
  }, [token, ns]);
  const logout = () => {
    setToken(null);
    sessionStorage.removeItem('wasmbed.user');
    setTok(null);
  };
  if (!token) {
    return (
      <Login
        onLogin={(u) => {
          sessionStorage.setItem('wasmbed.user', u);
          setUser(u);
          setTok(getToken());
        }}
      />
    );
  }
  const nav = [
    ['/', 'Overview'],
    ['/devices', 'Devices'],
    ['/applications', 'Applications'],
    ['/gateways', 'Gateways'],
  ];
  const active = (to: string) => (to === '/' ? path === '/' : path.startsWith(to));
  return (
    <Box>
      <AppBar position="sticky" color="default" elevation={1}>
        <Toolbar sx={{ gap: 1 }}>
          <Typography variant="h6" sx={{ mr: 2, fontWeight: 700 }}>
            Wasmbed
          </Typography>
          {nav.map(([to, label]) => (
            <Button key={to} href={`#${to}`} color={active(to) ? 'primary' : 'inherit'} variant={active(to) ? 'outlined' : 'text'} data-testid={`nav-${label.toLowerCase()}`}>
              {label}
            </Button>
          ))}
          <Box sx={{ flex: 1 }} />
          <Box
            component="form"
            onSubmit={(e: React.FormEvent) => {
              e.preventDefault();
              setNamespace(nsInput.trim());
            }}
          >
            <TextField size="small" label="Namespace" placeholder="all namespaces" value={nsInput} onChange={(e) => setNsInput(e.target.value)} sx={{ width: 180 }} onBlur={() => nsInput.trim() !== ns && setNamespace(nsInput.trim())} />
          </Box>
          <Tooltip title={streamError ?? 'changes appear without reloading'}>
            <Chip size="small" label={streamLabel[stream]} color={streamColor[stream]} data-testid="stream-state" />
          </Tooltip>
          <Typography variant="body2" color="text.secondary" sx={{ ml: 1 }}>
            {user}
          </Typography>
          <Button size="small" onClick={logout}>
            Sign out
          </Button>
        </Toolbar>
      </AppBar>
      <Container maxWidth="xl" sx={{ py: 3 }}>
        <Page path={path} />
      </Container>
    </Box>
  );
}
