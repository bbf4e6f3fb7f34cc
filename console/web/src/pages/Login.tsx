import { Alert, Box, Button, Paper, TextField, Typography } from '@mui/material';
import { useState } from 'react';
import { api, setToken } from '../api';
import { ErrorAlert } from '../components/common';

/** Login asks for a bearer token and checks it with the apiserver (whoami). */
export function Login({ onLogin }: { onLogin: (user: string) => void }) {
  const [token, setTok] = useState('');
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    setToken(token.trim());
    try {
      const who = await api<{ username: string }>('GET', '/api/v1/whoami');
      onLogin(who.username);
    } catch (err) {
      setToken(null);
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Box sx={{ display: 'flex', justifyContent: 'center', mt: 10 }}>
      <Paper sx={{ p: 4, width: 520 }} component="form" onSubmit={submit}>
        <Typography variant="h5" gutterBottom>
          Wasmbed console
        </Typography>
        <Typography color="text.secondary" sx={{ mb: 2 }}>
          Sign in with a Kubernetes bearer token. The console acts with your identity: what you see and change is what your
          RBAC rights allow.
        </Typography>
        <Alert severity="info" sx={{ mb: 2 }}>
          In <code>make run</code>, paste the admin token <code>wasmbed dev</code> prints (also in <code>.run/pki/admin.token</code>). In a
          cluster: <code>kubectl create token &lt;service-account&gt;</code> or your OIDC id token.
        </Alert>
        <TextField
          label="Token"
          type="password"
          fullWidth
          autoFocus
          value={token}
          onChange={(e) => setTok(e.target.value)}
          inputProps={{ 'data-testid': 'token-input' }}
        />
        <ErrorAlert error={error} title="Sign-in failed" />
        <Button type="submit" variant="contained" sx={{ mt: 2 }} disabled={!token.trim() || busy} data-testid="login-button">
          {busy ? 'Checking…' : 'Sign in'}
        </Button>
        <Typography variant="caption" display="block" sx={{ mt: 2 }} color="text.secondary">
          The token is kept in this tab's session storage only and sent to the console in the Authorization header.
        </Typography>
      </Paper>
    </Box>
  );
}
