using AttrCloak.Cli;

return await CliApp.RunAsync(args);
