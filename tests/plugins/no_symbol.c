/* no_symbol.c — a shared object without any weir descriptor. */
int weir_test_not_a_plugin(void);
int weir_test_not_a_plugin(void)
{
    return 42;
}
