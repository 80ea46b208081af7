// Namespace settings in the Store contract: what an admin set for a namespace
// (run-as user and group, public reads, output roots) is kept, changed field by
// field, listed, and survives a reopen.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import type { Store } from '../../src/store/types.js';
import { TestClock, type StoreFactory } from './contract.js';

export function namespaceContract(name: string, makeFactory: () => StoreFactory): void {
  describe(`Store contract, namespace settings: ${name}`, () => {
    let factory: StoreFactory;
    let store: Store;
    let clock: TestClock;

    beforeEach(async () => {
      factory = makeFactory();
      clock = new TestClock();
      store = await factory.create(clock);
    });
    afterEach(async () => {
      await store.close();
      await factory.cleanup();
    });

    it('a namespace nobody configured has no settings', async () => {
      expect(await store.getNamespaceSettings('dumps')).toBeNull();
      expect(await store.listNamespaceSettings()).toEqual([]);
    });

    it('a first change creates the row with defaults for the fields it does not name', async () => {
      expect(await store.setNamespaceSettings('dumps', { public: true })).toEqual({ namespace: 'dumps', user: null, group: null, public: true, outputRoots: [] });
      expect(await store.getNamespaceSettings('dumps')).toEqual({ namespace: 'dumps', user: null, group: null, public: true, outputRoots: [] });
    });

    it('a change keeps the fields it does not name; null clears user and group; roots keep their order, once each', async () => {
      await store.setNamespaceSettings('dumps', { user: 'tools.dumps', group: 'tools', outputRoots: ['/srv/dumps', '/srv/b', '/srv/dumps'] });
      expect(await store.getNamespaceSettings('dumps')).toEqual({ namespace: 'dumps', user: 'tools.dumps', group: 'tools', public: false, outputRoots: ['/srv/dumps', '/srv/b'] });
      expect(await store.setNamespaceSettings('dumps', { public: true })).toEqual({ namespace: 'dumps', user: 'tools.dumps', group: 'tools', public: true, outputRoots: ['/srv/dumps', '/srv/b'] });
      expect(await store.setNamespaceSettings('dumps', { group: null, outputRoots: [] })).toEqual({ namespace: 'dumps', user: 'tools.dumps', group: null, public: true, outputRoots: [] });
      expect(await store.setNamespaceSettings('dumps', { user: null, public: false })).toEqual({ namespace: 'dumps', user: null, group: null, public: false, outputRoots: [] });
    });

    it('lists every configured namespace by name, each with its own settings', async () => {
      await store.setNamespaceSettings('zeta', { user: 'z' });
      await store.setNamespaceSettings('alpha', { public: true });
      await store.setNamespaceSettings('mid', { outputRoots: ['/srv/mid'] });
      expect(await store.listNamespaceSettings()).toEqual([
        { namespace: 'alpha', user: null, group: null, public: true, outputRoots: [] },
        { namespace: 'mid', user: null, group: null, public: false, outputRoots: ['/srv/mid'] },
        { namespace: 'zeta', user: 'z', group: null, public: false, outputRoots: [] },
      ]);
    });

    it('concurrent changes of different fields both stay', async () => {
      await Promise.all([
        store.setNamespaceSettings('dumps', { user: 'u' }),
        store.setNamespaceSettings('dumps', { public: true }),
        store.setNamespaceSettings('dumps', { outputRoots: ['/srv/x'] }),
      ]);
      expect(await store.getNamespaceSettings('dumps')).toEqual({ namespace: 'dumps', user: 'u', group: null, public: true, outputRoots: ['/srv/x'] });
    });

    it('keeps the settings across a close and reopen', async () => {
      await store.setNamespaceSettings('dumps', { user: 'tools.dumps', public: true, outputRoots: ['/srv/dumps'] });
      await store.close();
      store = await factory.reopen(clock);
      expect(await store.getNamespaceSettings('dumps')).toEqual({ namespace: 'dumps', user: 'tools.dumps', group: null, public: true, outputRoots: ['/srv/dumps'] });
    });
  });
}
