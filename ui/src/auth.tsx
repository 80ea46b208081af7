// Who the operator is: the token they logged in with (localStorage) and what
// GET /api/v1/auth/whoami says it may do. Actions are hidden or disabled from it.
import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from 'react';
import { canAct, whoami, type Whoami } from './api';

interface AuthState {
  who: Whoami | null;
  refresh: () => Promise<Whoami>;
  can: (namespace?: string) => boolean;
}

const AuthContext = createContext<AuthState>({ who: null, refresh: async () => ({ auth: false, role: 'admin', namespaces: ['*'] }), can: () => false });

export function AuthProvider({ children }: { children: ReactNode }) {
  const [who, setWho] = useState<Whoami | null>(null);
  const refresh = useCallback(async () => {
    const w = await whoami().catch((): Whoami => ({ auth: true, role: null, namespaces: [] }));
    setWho(w);
    return w;
  }, []);
  useEffect(() => {
    void refresh();
  }, [refresh]);
  return <AuthContext.Provider value={{ who, refresh, can: (ns) => canAct(who, ns) }}>{children}</AuthContext.Provider>;
}

export const useAuth = () => useContext(AuthContext);
