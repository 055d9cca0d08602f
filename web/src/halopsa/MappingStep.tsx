// Step 2: the mapping table. Each complete row maps a platform customer account to a HaloPSA
// customer and the item its subscription is billed from. Complete rows are saved as a set
// shortly after each change. Rows that are incomplete or no longer valid stay on the page,
// marked, and are neither sent nor dropped.
import { useVirtualizer } from '@tanstack/react-virtual';
import {
  memo,
  useCallback,
  useDeferredValue,
  useEffect,
  useMemo,
  useRef,
  useState,
  type Ref,
} from 'react';
import type {
  ClientsResponse,
  ItemsResponse,
  MappingsResponse,
  HaloItemOption,
} from '../../../src/contract/halopsa.ts';
import type { CustomersResponse } from '../../../src/contract/platform.ts';
import { api, ApiError, messageOf } from '../api.ts';
import { Combobox, type ComboboxOption } from '../components/Combobox.tsx';
import { FieldError } from '../components/Field.tsx';
import { Notice } from '../components/Notice.tsx';
import { PageHeading } from '../components/PageHeading.tsx';
import { Progress } from '../components/Progress.tsx';
import { count, formatNumber } from '../format.ts';
import { navigate, useLeaveGuard } from '../router.tsx';
import {
  blockerForNext,
  checkRows,
  completeMappings,
  emptyRow,
  mappingSetKey,
  missingText,
  rowsForUnmappedCustomers,
  rowsFromMappings,
  type Lookups,
  type MappingRow,
  type RowCheck,
  type RowField,
} from './mapping-rows.ts';
import { stepPath, useWizard } from './Wizard.tsx';

const SAVE_DELAY_MS = 700;
const ROW_HEIGHT_ESTIMATE = 58;

interface Options {
  customers: ComboboxOption[];
  clients: ComboboxOption[];
  items: HaloItemOption[];
}

// NOTE: the clients route reads every HaloPSA customer from HaloPSA on each call, 50 pages
// for 5,000 customers, so each load and Resync of this step costs that many HaloPSA requests.
async function loadLookups(): Promise<{ lookups: Lookups; options: Options }> {
  const [customers, clients, items] = await Promise.all([
    api.get<CustomersResponse>('/customers'),
    api.get<ClientsResponse>('/integrations/halopsa/clients'),
    api.get<ItemsResponse>('/integrations/halopsa/items'),
  ]);
  // The clients route lists active HaloPSA customers only, the ones a mapping may use.
  const activeClients = clients.clients.filter((client) => !client.inactive);
  return {
    lookups: {
      customers: new Map(customers.customers.map((customer) => [customer.id, customer])),
      clients: new Map(activeClients.map((client) => [client.id, client])),
      items: new Map(items.items.map((item) => [item.id, item])),
    },
    options: {
      customers: customers.customers.map((customer) => ({
        value: customer.id,
        label: customer.name,
        hint: count(customer.domainCount, 'domain'),
      })),
      clients: activeClients.map((client) => ({
        value: String(client.id),
        label: client.name,
        hint: `id ${client.id}`,
      })),
      items: items.items,
    },
  };
}

/** Drop the server's "Row 2: " prefix, which counts the rows sent rather than the table's. */
function rowMessage(message: string): string {
  const text = message.replace(/^Row \d+: /, '');
  return `${text.charAt(0).toUpperCase()}${text.slice(1)}`;
}

export function MappingStep() {
  const { reloadSummary } = useWizard();
  const [lookups, setLookups] = useState<Lookups | null>(null);
  const [options, setOptions] = useState<Options | null>(null);
  const [rows, setRows] = useState<MappingRow[]>([]);
  const [loadFailure, setLoadFailure] = useState<string | null>(null);
  const [savedKey, setSavedKey] = useState('');
  const [saving, setSaving] = useState(false);
  const [saveError, setSaveError] = useState<string | null>(null);
  const [resyncing, setResyncing] = useState(false);
  const [announcement, setAnnouncement] = useState('');
  const [nextError, setNextError] = useState<string | null>(null);
  const [leaving, setLeaving] = useState(false);
  const [newRowItem, setNewRowItem] = useState<number | null>(null);
  const [filter, setFilter] = useState('');
  const [focusKey, setFocusKey] = useState<string | null>(null);
  const deferredFilter = useDeferredValue(filter);

  // The save runs after the render that scheduled it, so it reads the newest state from refs.
  const latest = useRef({ rows, lookups, savedKey });
  latest.current = { rows, lookups, savedKey };
  const inFlight = useRef<Promise<boolean> | null>(null);
  const failedKey = useRef<string | null>(null);
  const scrollRef = useRef<HTMLDivElement>(null);
  const nextErrorRef = useRef<HTMLDivElement>(null);

  const load = useCallback(async () => {
    setLoadFailure(null);
    try {
      const [loaded, mappings] = await Promise.all([
        loadLookups(),
        api.get<MappingsResponse>('/integrations/halopsa/mappings'),
      ]);
      setLookups(loaded.lookups);
      setOptions(loaded.options);
      setRows(rowsFromMappings(mappings.mappings));
      setSavedKey(mappingSetKey(mappings.mappings));
    } catch (error) {
      setLoadFailure(messageOf(error));
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  const checks = useMemo(
    () => (lookups ? checkRows(rows, lookups) : new Map<string, RowCheck>()),
    [rows, lookups],
  );

  const desiredKey = useMemo(
    () => (lookups ? mappingSetKey(completeMappings(rows, lookups).body.mappings) : ''),
    [rows, lookups],
  );
  const savedTriples = useMemo(() => new Set(savedKey.split('|')), [savedKey]);
  // A row with a selection that is no longer valid is left out of the set sent. When the row
  // has a saved mapping, leaving it out would delete that mapping, so saving pauses instead.
  const blockingRows = useMemo(() => {
    const savedCustomers = new Set(savedKey.split('|').map((triple) => triple.split(':')[0]));
    return rows.filter(
      (row) =>
        row.customerId !== null &&
        savedCustomers.has(row.customerId) &&
        Object.keys(checks.get(row.key)?.problems ?? {}).length > 0,
    ).length;
  }, [rows, checks, savedKey]);
  const unfinishedRows = useMemo(
    () => [...checks.values()].filter((check) => !check.complete && !check.blank).length,
    [checks],
  );

  const save = useCallback(async (): Promise<boolean> => {
    if (inFlight.current) await inFlight.current;
    const { rows: currentRows, lookups: currentLookups } = latest.current;
    if (!currentLookups) return false;
    const { rowKeys, body } = completeMappings(currentRows, currentLookups);
    const key = mappingSetKey(body.mappings);
    if (key === latest.current.savedKey) return true;

    const attempt = (async () => {
      setSaving(true);
      try {
        const response = await api.put<MappingsResponse>('/integrations/halopsa/mappings', body);
        const saved = new Map(response.mappings.map((mapping) => [mapping.customerId, mapping]));
        const sent = new Set(rowKeys);
        setRows((current) =>
          current.map((row) => {
            const mapping = row.customerId ? saved.get(row.customerId) : undefined;
            if (!sent.has(row.key) || !mapping) return row;
            return {
              ...row,
              customerName: mapping.customerName,
              haloClientName: mapping.haloClientName,
              haloItemName: mapping.haloItemName,
              serverError: null,
            };
          }),
        );
        latest.current.savedKey = mappingSetKey(response.mappings);
        setSavedKey(latest.current.savedKey);
        failedKey.current = null;
        setSaveError(null);
        void reloadSummary().catch(() => undefined);
        return true;
      } catch (error) {
        failedKey.current = key;
        const match =
          error instanceof ApiError && error.field
            ? /^mappings\.(\d+)\.(customerId|haloClientId|haloItemId)$/.exec(error.field)
            : null;
        const rowKey = match ? rowKeys[Number(match[1])] : undefined;
        if (match && rowKey) {
          const message = rowMessage(messageOf(error));
          setRows((current) =>
            current.map((row) =>
              row.key === rowKey
                ? { ...row, serverError: { field: match[2] as RowField, message } }
                : row,
            ),
          );
          const position = latest.current.rows.findIndex((row) => row.key === rowKey) + 1;
          setSaveError(`Row ${position} was rejected, so no change was saved: ${message}`);
        } else {
          setSaveError(`The mappings were not saved: ${messageOf(error)}`);
        }
        return false;
      } finally {
        setSaving(false);
      }
    })();
    inFlight.current = attempt;
    try {
      return await attempt;
    } finally {
      if (inFlight.current === attempt) inFlight.current = null;
    }
  }, [reloadSummary]);

  // Save the complete rows shortly after a change, unless that would delete a saved mapping.
  useEffect(() => {
    if (!lookups || blockingRows > 0) return;
    if (desiredKey === savedKey || desiredKey === failedKey.current) return;
    const timer = window.setTimeout(() => void save(), SAVE_DELAY_MS);
    return () => window.clearTimeout(timer);
  }, [lookups, blockingRows, desiredKey, savedKey, save]);

  const unsaved = saving || (lookups !== null && desiredKey !== savedKey) || unfinishedRows > 0;
  useLeaveGuard(
    unsaved && !leaving
      ? unfinishedRows > 0
        ? `${count(unfinishedRows, 'row')} of the mapping table ${unfinishedRows === 1 ? 'is' : 'are'} not complete, so not saved.`
        : 'The latest changes to the mapping table are not saved yet.'
      : null,
  );

  const updateRow = useCallback((key: string, patch: Partial<MappingRow>) => {
    setRows((current) =>
      current.map((row) => (row.key === key ? { ...row, ...patch, serverError: null } : row)),
    );
    setNextError(null);
  }, []);

  const removeRow = useCallback((key: string) => {
    setRows((current) => current.filter((row) => row.key !== key));
    setNextError(null);
  }, []);

  const addRow = () => {
    const row = emptyRow(newRowItem);
    setFilter('');
    setRows((current) => [...current, row]);
    setFocusKey(row.key);
    setAnnouncement(`Added row ${formatNumber(rows.length + 1)}.`);
  };

  const addAll = () => {
    if (!lookups || !options) return;
    const { added, matched } = rowsForUnmappedCustomers(
      rows,
      [...lookups.customers.values()],
      [...lookups.clients.values()],
      newRowItem,
    );
    if (added.length === 0) {
      setAnnouncement('Every customer account already has a row.');
      return;
    }
    setFilter('');
    setRows((current) => [...current, ...added]);
    setFocusKey(added[0]!.key);
    setAnnouncement(
      `Added ${count(added.length, 'row')}; ${formatNumber(matched)} matched a HaloPSA customer of the same name.`,
    );
  };

  const resync = async () => {
    setResyncing(true);
    setAnnouncement('');
    try {
      const loaded = await loadLookups();
      const stale = [...checkRows(latest.current.rows, loaded.lookups).values()].filter(
        (check) => Object.keys(check.problems).length > 0,
      ).length;
      setLookups(loaded.lookups);
      setOptions(loaded.options);
      failedKey.current = null;
      setAnnouncement(
        stale === 0
          ? `Resync finished: ${count(loaded.lookups.clients.size, 'HaloPSA customer')} and ${count(loaded.lookups.items.size, 'item')}; every selection is still valid.`
          : `Resync finished: ${count(stale, 'row')} ${stale === 1 ? 'has a selection' : 'have selections'} that ${stale === 1 ? 'is' : 'are'} no longer valid, marked below. Choose again or remove ${stale === 1 ? 'it' : 'them'}.`,
      );
    } catch (error) {
      setAnnouncement(`Resync failed: ${messageOf(error)}`);
    } finally {
      setResyncing(false);
    }
  };

  const goNext = async () => {
    if (!lookups) return;
    const blocker = blockerForNext(rows, lookups);
    if (blocker) {
      setNextError(blocker);
      nextErrorRef.current?.focus();
      return;
    }
    setNextError(null);
    setLeaving(true);
    const saved = await save();
    if (!saved) {
      setLeaving(false);
      setNextError('The mappings could not be saved; the reason is shown above the table.');
      return;
    }
    await reloadSummary();
    navigate(stepPath('alerts'), { force: true });
  };

  const visibleRows = useMemo(() => {
    const needle = deferredFilter.trim().toLowerCase();
    const numbered = rows.map((row, index) => ({ row, number: index + 1 }));
    if (!needle || !lookups) return numbered;
    return numbered.filter(({ row }) => {
      const names = [
        row.customerId ? (lookups.customers.get(row.customerId)?.name ?? row.customerName) : '',
        row.haloClientId ? (lookups.clients.get(row.haloClientId)?.name ?? row.haloClientName) : '',
      ];
      return names.some((name) => name?.toLowerCase().includes(needle));
    });
  }, [rows, deferredFilter, lookups]);

  const usedCustomerIds = useMemo(
    () => new Set(rows.map((row) => row.customerId).filter((id): id is string => id !== null)),
    [rows],
  );

  const virtualizer = useVirtualizer({
    count: visibleRows.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => ROW_HEIGHT_ESTIMATE,
    getItemKey: (index) => visibleRows[index]!.row.key,
    overscan: 8,
  });

  // Bring a new row into view and put the focus in its first field.
  useEffect(() => {
    if (!focusKey) return;
    const index = visibleRows.findIndex(({ row }) => row.key === focusKey);
    if (index < 0) return;
    virtualizer.scrollToIndex(index, { align: 'center' });
    let tries = 0;
    let frame = 0;
    const attempt = () => {
      const input = document.getElementById(`mapping-${focusKey}-customer`);
      if (input) {
        input.focus();
        setFocusKey(null);
      } else if (tries++ < 20) {
        frame = window.requestAnimationFrame(attempt);
      }
    };
    frame = window.requestAnimationFrame(attempt);
    return () => window.cancelAnimationFrame(frame);
  }, [focusKey, visibleRows, virtualizer]);

  if (loadFailure) {
    return (
      <section aria-labelledby="step-title">
        <PageHeading>
          <span id="step-title">Step 2 of 3: Map customers and items</span>
        </PageHeading>
        <Notice kind="error" title="The mapping table could not be loaded">
          <p>{loadFailure}</p>
          <button type="button" className="button" onClick={() => void load()}>
            Try again
          </button>
        </Notice>
      </section>
    );
  }

  const virtualItems = virtualizer.getVirtualItems();
  const paddingTop = virtualItems[0]?.start ?? 0;
  const paddingBottom = virtualizer.getTotalSize() - (virtualItems.at(-1)?.end ?? 0);

  return (
    <section aria-labelledby="step-title">
      <PageHeading>
        <span id="step-title">Step 2 of 3: Map customers and items</span>
      </PageHeading>
      <p>
        Map each customer account to its HaloPSA customer and the item its subscription is billed
        from. dmarcdesk keeps one subscription per mapped customer, with a quantity equal to the
        customer's active domains. A row is saved once all three are chosen.
      </p>
      {!lookups || !options ? (
        <Progress label="Loading customer accounts, and customers and items from HaloPSA…" />
      ) : (
        <>
          <div className="toolbar">
            <div className="toolbar__group">
              <button type="button" className="button" onClick={addRow}>
                Add New
              </button>
              <button type="button" className="button" onClick={addAll}>
                Add All Customers
              </button>
              <button
                type="button"
                className="button"
                onClick={() => void resync()}
                aria-disabled={resyncing}
                disabled={resyncing}
              >
                Resync
              </button>
            </div>
            <div className="toolbar__group">
              <label className="inline-field">
                <span>Item for new rows</span>
                <select
                  className="input"
                  value={newRowItem ?? ''}
                  onChange={(event) =>
                    setNewRowItem(event.target.value ? Number(event.target.value) : null)
                  }
                >
                  <option value="">None</option>
                  {options.items.map((item) => (
                    <option key={item.id} value={item.id}>
                      {item.name}
                    </option>
                  ))}
                </select>
              </label>
              <label className="inline-field">
                <span>Filter rows</span>
                <input
                  className="input"
                  type="search"
                  value={filter}
                  placeholder="Customer name"
                  onChange={(event) => setFilter(event.target.value)}
                />
              </label>
            </div>
          </div>
          {resyncing ? (
            <Progress label="Reloading customer accounts, and customers and items from HaloPSA…" />
          ) : null}
          <p className="status-line" role="status">
            {announcement}
          </p>
          <SaveState
            saving={saving}
            error={saveError}
            rows={rows.length}
            blockingRows={blockingRows}
            unfinishedRows={unfinishedRows}
            pending={desiredKey !== savedKey}
            onRetry={() => {
              failedKey.current = null;
              void save();
            }}
          />
          <div className="table-scroll" ref={scrollRef}>
            <table className="table mapping-table" aria-rowcount={visibleRows.length + 1}>
              <caption className="visually-hidden">
                Mappings of customer accounts to HaloPSA customers and items
              </caption>
              <thead>
                <tr aria-rowindex={1}>
                  <th scope="col" className="mapping-table__number">
                    Row
                  </th>
                  <th scope="col">Customer account</th>
                  <th scope="col">HaloPSA customer</th>
                  <th scope="col">HaloPSA item</th>
                  <th scope="col">State</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {paddingTop > 0 ? (
                  <tr aria-hidden="true" className="spacer">
                    <td colSpan={6} style={{ height: paddingTop }} />
                  </tr>
                ) : null}
                {visibleRows.length === 0 ? (
                  <tr>
                    <td colSpan={6} className="table__empty">
                      {rows.length === 0
                        ? 'No rows yet. Press Add New for one row, or Add All Customers for a row per customer account.'
                        : 'No row matches the filter.'}
                    </td>
                  </tr>
                ) : null}
                {virtualItems.map((item) => {
                  const { row, number } = visibleRows[item.index]!;
                  const check = checks.get(row.key)!;
                  const triple = `${row.customerId}:${row.haloClientId}:${row.haloItemId}`;
                  return (
                    <MappingRowView
                      key={row.key}
                      measureRef={virtualizer.measureElement}
                      index={item.index}
                      rowIndex={item.index + 2}
                      number={number}
                      row={row}
                      check={check}
                      saved={check.complete && savedTriples.has(triple)}
                      saving={saving}
                      options={options}
                      lookups={lookups}
                      usedCustomerIds={usedCustomerIds}
                      onUpdate={updateRow}
                      onRemove={removeRow}
                    />
                  );
                })}
                {paddingBottom > 0 ? (
                  <tr aria-hidden="true" className="spacer">
                    <td colSpan={6} style={{ height: paddingBottom }} />
                  </tr>
                ) : null}
              </tbody>
            </table>
          </div>
          <div className="form__actions">
            <button
              type="button"
              className="button button--primary"
              onClick={() => void goNext()}
              aria-disabled={leaving}
            >
              Next
            </button>
            {leaving ? <Progress label="Saving the mappings…" /> : null}
          </div>
          <div ref={nextErrorRef} tabIndex={-1}>
            {nextError ? <Notice kind="error">{nextError}</Notice> : null}
          </div>
        </>
      )}
    </section>
  );
}

function SaveState(props: {
  saving: boolean;
  error: string | null;
  rows: number;
  blockingRows: number;
  unfinishedRows: number;
  pending: boolean;
  onRetry(): void;
}) {
  if (props.error) {
    return (
      <Notice kind="error">
        <p>{props.error}</p>
        <button type="button" className="button" onClick={props.onRetry}>
          Try saving again
        </button>
      </Notice>
    );
  }
  const complete = props.rows - props.unfinishedRows;
  let text: string;
  if (props.saving) text = 'Saving…';
  else if (props.blockingRows > 0) {
    const one = props.blockingRows === 1;
    text = `Saving is paused: ${count(props.blockingRows, 'saved row')} ${one ? 'has a selection that is' : 'have selections that are'} no longer valid. Saving without ${one ? 'it' : 'them'} would delete ${one ? 'its mapping' : 'their mappings'}.`;
  } else if (props.pending) text = 'Changes not saved yet.';
  else if (complete === 0) text = 'No complete row yet.';
  else text = `${count(complete, 'complete row')} saved.`;
  return (
    <p
      className={`save-state ${props.blockingRows > 0 ? 'save-state--warning' : ''}`}
      aria-live="polite"
    >
      {props.saving ? <span className="spinner" aria-hidden="true" /> : null}
      {text}
      {props.unfinishedRows > 0 && props.blockingRows === 0
        ? ` ${count(props.unfinishedRows, 'row')} not complete.`
        : ''}
    </p>
  );
}

interface RowViewProps {
  measureRef: Ref<HTMLTableRowElement>;
  index: number;
  rowIndex: number;
  number: number;
  row: MappingRow;
  check: RowCheck;
  saved: boolean;
  saving: boolean;
  options: Options;
  lookups: Lookups;
  usedCustomerIds: ReadonlySet<string>;
  onUpdate(key: string, patch: Partial<MappingRow>): void;
  onRemove(key: string): void;
}

const MappingRowView = memo(function MappingRowView(props: RowViewProps) {
  const { row, check, number, lookups, options } = props;
  const id = (field: string) => `mapping-${row.key}-${field}`;
  const problemOf = (field: RowField): string | null =>
    check.problems[field] ?? (row.serverError?.field === field ? row.serverError.message : null);

  let state: { text: string; detail?: string; kind: 'ok' | 'warning' | 'error' | 'neutral' };
  if (row.serverError) state = { text: 'Rejected', kind: 'error' };
  else if (Object.keys(check.problems).length > 0) {
    state = { text: 'No longer valid', kind: 'error' };
  } else if (check.blank) state = { text: 'Empty', kind: 'neutral' };
  else if (!check.complete) {
    const needs = missingText(check.missing);
    state = { text: 'Incomplete', detail: `To save it, ${needs}.`, kind: 'warning' };
  } else if (props.saved) state = { text: 'Saved', kind: 'ok' };
  else state = { text: props.saving ? 'Saving…' : 'Waiting to save', kind: 'neutral' };
  const generalError =
    row.serverError && row.serverError.field === null ? row.serverError.message : null;

  const customerProblem = problemOf('customerId');
  const clientProblem = problemOf('haloClientId');
  const itemProblem = problemOf('haloItemId');
  const itemMissing = row.haloItemId !== null && !lookups.items.has(row.haloItemId);

  return (
    <tr
      ref={props.measureRef}
      data-index={props.index}
      aria-rowindex={props.rowIndex}
      className={state.kind === 'error' ? 'row--error' : undefined}
    >
      <td className="mapping-table__number">{number}</td>
      <td>
        <Combobox
          id={id('customer')}
          ariaLabel={`Customer account, row ${number}`}
          noun="customer account"
          options={options.customers}
          exclude={props.usedCustomerIds}
          value={row.customerId}
          valueLabel={row.customerName}
          placeholder="Choose a customer account"
          invalid={!!customerProblem}
          describedBy={customerProblem ? `${id('customer')}-error` : undefined}
          onChange={(value) =>
            props.onUpdate(row.key, {
              customerId: value,
              customerName: lookups.customers.get(value)?.name ?? null,
            })
          }
        />
        {customerProblem ? (
          <FieldError id={`${id('customer')}-error`}>{customerProblem}</FieldError>
        ) : null}
      </td>
      <td>
        <Combobox
          id={id('client')}
          ariaLabel={`HaloPSA customer, row ${number}`}
          noun="HaloPSA customer"
          options={options.clients}
          value={row.haloClientId === null ? null : String(row.haloClientId)}
          valueLabel={row.haloClientName}
          placeholder="Choose a HaloPSA customer"
          invalid={!!clientProblem}
          describedBy={clientProblem ? `${id('client')}-error` : undefined}
          onChange={(value) =>
            props.onUpdate(row.key, {
              haloClientId: Number(value),
              haloClientName: lookups.clients.get(Number(value))?.name ?? null,
            })
          }
        />
        {clientProblem ? (
          <FieldError id={`${id('client')}-error`}>{clientProblem}</FieldError>
        ) : null}
      </td>
      <td>
        <select
          id={id('item')}
          className="input"
          aria-label={`HaloPSA item, row ${number}`}
          aria-invalid={itemProblem ? true : undefined}
          aria-describedby={itemProblem ? `${id('item')}-error` : undefined}
          value={row.haloItemId ?? ''}
          onChange={(event) => {
            const itemId = event.target.value ? Number(event.target.value) : null;
            props.onUpdate(row.key, {
              haloItemId: itemId,
              haloItemName: itemId === null ? null : (lookups.items.get(itemId)?.name ?? null),
            });
          }}
        >
          <option value="">Choose an item</option>
          {itemMissing ? (
            <option value={row.haloItemId!}>
              {row.haloItemName ?? `Item ${row.haloItemId}`} (no longer in HaloPSA)
            </option>
          ) : null}
          {options.items.map((item) => (
            <option key={item.id} value={item.id}>
              {item.name}
            </option>
          ))}
        </select>
        {itemProblem ? <FieldError id={`${id('item')}-error`}>{itemProblem}</FieldError> : null}
      </td>
      <td>
        <span className={`badge badge--${state.kind}`}>{state.text}</span>
        {state.detail ? <p className="row-detail">{state.detail}</p> : null}
        {generalError ? <FieldError id={`${id('row')}-error`}>{generalError}</FieldError> : null}
      </td>
      <td>
        <button
          type="button"
          className="button button--quiet"
          aria-label={`Remove row ${number}`}
          onClick={() => props.onRemove(row.key)}
        >
          Remove
        </button>
      </td>
    </tr>
  );
});
